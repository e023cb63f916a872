//! `offramp settings`: organization settings per client, with global defaults.

use clap::Subcommand;
use offramp::app;
use offramp::config::ConfigSource;
use offramp::domain::{GLOBAL_SCOPE, PsaKind, SettingRecord};
use offramp::error::OfframpError;
use offramp::workflows::org_settings;

use super::initiated_by;

#[derive(Subcommand)]
pub enum SettingsCommand {
    /// The value a run for CLIENT would use, and where it comes from.
    Get { client: String, key: String },
    /// Set KEY for CLIENT (`global` for every client without its own value).
    Set {
        client: String,
        key: String,
        value: String,
        #[arg(long, env = "OFFRAMP_INITIATED_BY")]
        initiated_by: Option<String>,
    },
    /// Remove CLIENT's own value of KEY (the global value or the default applies again).
    Unset {
        client: String,
        key: String,
        #[arg(long, env = "OFFRAMP_INITIATED_BY")]
        initiated_by: Option<String>,
    },
    /// Every setting as a run for CLIENT would resolve it.
    List {
        client: String,
        #[arg(long)]
        json: bool,
    },
}

/// `global` (or `*`) is the scope every client falls back to.
fn scope(client: &str) -> Result<String, OfframpError> {
    let client = client.trim();
    if client.eq_ignore_ascii_case("global") || client == GLOBAL_SCOPE {
        return Ok(GLOBAL_SCOPE.to_string());
    }
    offramp::workflows::input::identifier("CLIENT", Some(client))?
        .ok_or_else(|| OfframpError::invalid_input("CLIENT is required (a PSA company id, or 'global')"))
}

pub async fn run(source: &ConfigSource, command: SettingsCommand) -> Result<i32, OfframpError> {
    // Settings are per PSA (company ids are); only the PSA kind is needed, no credentials.
    let psa: PsaKind =
        source.get("OFFRAMP_PSA").unwrap_or("connectwise").parse().map_err(OfframpError::configuration)?;
    let psa = psa.as_str();
    let store = app::stores(source).await?.settings;
    let put = |client: &str, key: &str, value: Option<String>, by: Option<String>| {
        let scope = scope(client);
        let namespace = org_settings::namespace(key, psa).to_string();
        let key = key.to_string();
        let store = store.clone();
        async move {
            let record = SettingRecord {
                psa: namespace,
                scope: scope?,
                key,
                value,
                set_by: initiated_by(by.as_deref()),
                set_at: offramp::domain::now(),
            };
            store.put_setting(&record).await?;
            Ok::<SettingRecord, OfframpError>(record)
        }
    };
    match command {
        SettingsCommand::Set { client, key, value, initiated_by: by } => {
            let value = org_settings::validate(key.trim(), &value)?;
            let record = put(&client, key.trim(), Some(value), by).await?;
            println!("{} {} = {}", record.scope, record.key, record.value.unwrap_or_default());
            Ok(0)
        }
        SettingsCommand::Unset { client, key, initiated_by: by } => {
            org_settings::validate_key(key.trim())?;
            let record = put(&client, key.trim(), None, by).await?;
            println!("{} {} unset", record.scope, record.key);
            Ok(0)
        }
        SettingsCommand::Get { client, key } => {
            org_settings::validate_key(key.trim())?;
            let namespace = org_settings::namespace(key.trim(), psa);
            let resolved = org_settings::resolve_raw(store.as_ref(), namespace, &scope(&client)?).await?;
            let (value, from) = resolved.get(key.trim()).cloned().unwrap_or_default();
            println!("{} ({from})", value.as_deref().unwrap_or("(unset)"));
            Ok(0)
        }
        SettingsCommand::List { client, json } => {
            let resolved = org_settings::resolve_raw(store.as_ref(), psa, &scope(&client)?).await?;
            if json {
                let value: serde_json::Map<String, serde_json::Value> = resolved
                    .iter()
                    .map(|(k, (v, from))| (k.clone(), serde_json::json!({ "value": v, "source": from })))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                for (key, (value, from)) in &resolved {
                    println!("{key} = {} ({from})", value.as_deref().unwrap_or("(unset)"));
                }
            }
            Ok(0)
        }
    }
}
