//! One module per command: its flags, how it runs, how it prints. Commands that change
//! data go through [`crate::confirm::preview_confirm_apply`].

pub mod audit;
pub mod client;
pub mod configs;
pub mod contacts;
pub mod itglue;
pub mod rollback;
pub mod settings;
pub mod user;
pub mod webhooks;

use serde::Serialize;

/// Flags every command that changes data shares: the target's lease and the idempotency key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunControl {
    /// Take the target's lease from the run that holds it. Only when that run is known to
    /// be dead (its process was killed); the break is recorded. Otherwise wait for its
    /// lease to expire (2 minutes without renewal).
    #[arg(long)]
    pub break_lease: bool,
    /// Run at most once per key: the same key with the same request prints the first
    /// run's report instead of running again (kept 24 hours).
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Who runs this (docs/architecture.md#who-is-asking): the OS user, `cli:<user>`;
/// `--initiated-by` / `OFFRAMP_INITIATED_BY` only says whom it is for,
/// `cli:<user> (on behalf of <name>)`. The AWS identity is not added: the CLI would need STS,
/// which is not among its dependencies.
pub fn initiated_by(given: Option<&str>) -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    offramp::entry::initiator(&format!("cli:{user}"), given.map(str::to_string)).unwrap_or_default()
}

/// A report (or record) as pretty JSON on stdout: what `--json` prints.
pub fn print_json(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
