//! The secret store adapters: environment variables, and Secrets Manager on moto; and the
//! secret vault (user offboarding's kept passwords) on moto.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^secret_stores::/)'`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offramp::adapters::secret_vault_aws::SecretsManagerVault;
use offramp::adapters::secrets_aws::SecretsManagerStore;
use offramp::adapters::secrets_env::EnvSecretStore;
use offramp::error::SecretError;
use offramp::ports::{SecretStore, SecretVault};
use offramp::secret::{SecretString, generate_password};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::moto;
use serde_json::json;

async fn value(store: &dyn SecretStore, key: &str) -> Option<String> {
    store.get(key).await.unwrap_or_else(|e| panic!("get({key}) failed: {e}")).map(|v| v.expose().to_string())
}

#[tokio::test]
async fn env_store_reads_variables() {
    let store = EnvSecretStore::with_vars(HashMap::from([
        ("CONNECTWISE_PRIVATE_KEY".to_string(), "env-private-value".to_string()),
        ("CONNECTWISE_PUBLIC_KEY".to_string(), String::new()),
    ]));
    assert_eq!(value(&store, "CONNECTWISE_PRIVATE_KEY").await.as_deref(), Some("env-private-value"));
    assert_eq!(value(&store, "CONNECTWISE_PUBLIC_KEY").await, None, "empty counts as absent");
    assert_eq!(value(&store, "CONNECTWISE_CLIENT_ID").await, None);
    let secret = store.get("CONNECTWISE_PRIVATE_KEY").await.expect("get").expect("present");
    assert!(!format!("{secret:?}").contains("env-private-value"));

    // The process environment.
    let store = EnvSecretStore::new();
    assert_eq!(value(&store, "PATH").await, std::env::var("PATH").ok());
    assert_eq!(value(&store, "OFFRAMP_TEST_NEVER_SET_ANYWHERE").await, None);
}

async fn create_secret(client: &aws_sdk_secretsmanager::Client, name: &str, text: &str) -> String {
    let out = client.create_secret().name(name).secret_string(text).send().await.expect("create secret");
    out.arn().expect("arn").to_string()
}

#[tokio::test]
async fn secrets_manager_store_caches_the_secret_for_its_ttl() {
    let client = moto::secrets_client().await;
    let name = moto::unique_secret_name();
    let initial = json!({
        "CONNECTWISE_PRIVATE_KEY": "private-value-1",
        "CONNECTWISE_PUBLIC_KEY": "public-value-1",
        "CONNECTWISE_CLIENT_ID": "",
    });
    create_secret(&client, &name, &initial.to_string()).await;

    let ttl = Duration::from_secs(3);
    let store = SecretsManagerStore::new(client.clone(), &name, ttl);
    assert_eq!(store.fetch_count(), 0, "nothing is fetched before the first get");

    let secret = store.get("CONNECTWISE_PRIVATE_KEY").await.expect("get").expect("present");
    let first_fetch = Instant::now();
    assert_eq!(secret.expose(), "private-value-1");
    assert!(!format!("{secret:?}").contains("private-value-1"), "Debug shows no value");
    assert!(!format!("{secret}").contains("private-value-1"), "Display shows no value");
    assert!(!format!("{store:?}").contains("private-value-1"), "the store's Debug shows no value");
    assert_eq!(store.fetch_count(), 1);

    assert_eq!(value(&store, "CONNECTWISE_PUBLIC_KEY").await.as_deref(), Some("public-value-1"));
    assert_eq!(value(&store, "CONNECTWISE_CLIENT_ID").await, None, "empty counts as absent");
    assert_eq!(value(&store, "NOT_IN_THE_SECRET").await, None);
    assert_eq!(store.fetch_count(), 1, "gets within the TTL use the cached secret");

    // Rotate the secret: within the TTL the cached value is still used.
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string(json!({"CONNECTWISE_PRIVATE_KEY": "private-value-2"}).to_string())
        .send()
        .await
        .expect("put secret value");
    assert_eq!(value(&store, "CONNECTWISE_PRIVATE_KEY").await.as_deref(), Some("private-value-1"));
    assert!(first_fetch.elapsed() < ttl, "the test itself took longer than the TTL; it proves nothing");
    assert_eq!(store.fetch_count(), 1, "no fetch within the TTL");

    // After the TTL, the new version is fetched.
    tokio::time::sleep(ttl.saturating_sub(first_fetch.elapsed()) + Duration::from_millis(200)).await;
    assert_eq!(value(&store, "CONNECTWISE_PRIVATE_KEY").await.as_deref(), Some("private-value-2"));
    assert_eq!(store.fetch_count(), 2, "one fetch after the TTL");
    assert_eq!(value(&store, "CONNECTWISE_PUBLIC_KEY").await, None, "the new version has no public key");
    assert_eq!(store.fetch_count(), 2);

    // invalidate() forces the next get to fetch.
    store.invalidate().await;
    assert_eq!(value(&store, "CONNECTWISE_PRIVATE_KEY").await.as_deref(), Some("private-value-2"));
    assert_eq!(store.fetch_count(), 3);
}

#[tokio::test]
async fn secrets_manager_store_shares_one_fetch_between_concurrent_callers() {
    let client = moto::secrets_client().await;
    let name = moto::unique_secret_name();
    let arn = create_secret(&client, &name, &json!({"CONNECTWISE_PRIVATE_KEY": "shared-value"}).to_string()).await;
    // By ARN, as a deployed stack passes it.
    let store = Arc::new(SecretsManagerStore::new(client, arn, Duration::from_secs(300)));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.get("CONNECTWISE_PRIVATE_KEY").await })
        })
        .collect();
    for task in tasks {
        let secret = task.await.expect("task").expect("get").expect("present");
        assert_eq!(secret.expose(), "shared-value");
    }
    assert_eq!(store.fetch_count(), 1, "16 concurrent gets, one fetch");
}

#[tokio::test]
async fn secrets_manager_store_reports_missing_and_malformed_secrets() {
    let client = moto::secrets_client().await;

    let missing = moto::unique_secret_name();
    let store = SecretsManagerStore::new(client.clone(), &missing, Duration::from_secs(300));
    match store.get("CONNECTWISE_PRIVATE_KEY").await {
        Err(SecretError::NotFound { id }) => assert_eq!(id, missing),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // Failures are not cached: the next get asks again.
    assert!(matches!(store.get("X").await, Err(SecretError::NotFound { .. })));
    assert_eq!(store.fetch_count(), 2);

    for text in [
        "private-value-not-json".to_string(),
        json!(["private-value-in-array"]).to_string(),
        json!({"CONNECTWISE_PRIVATE_KEY": 12345, "OTHER": "private-value-beside"}).to_string(),
    ] {
        let name = moto::unique_secret_name();
        create_secret(&client, &name, &text).await;
        let store = SecretsManagerStore::new(client.clone(), &name, Duration::from_secs(300));
        match store.get("CONNECTWISE_PRIVATE_KEY").await {
            Err(e @ SecretError::Malformed { .. }) => {
                let shown = format!("{e} {e:?}");
                assert!(shown.contains(&name), "{shown}");
                assert!(!shown.contains("private-value"), "the error must not show the secret: {shown}");
            }
            other => panic!("expected Malformed for {text:?}, got {other:?}"),
        }
    }
}

/// The environment of a process whose PSA credentials are in the Secrets Manager secret
/// `name` (cached for `ttl_s`), audit trail in `audit_db`; `psa` names the PSA and its URLs.
fn rotating_source(
    psa: &[(&str, String)],
    secret_setting: &str,
    name: &str,
    ttl_s: u64,
    audit_db: &std::path::Path,
) -> offramp::config::ConfigSource {
    let mut source = offramp::config::ConfigSource::from_pairs([
        (secret_setting, name.to_string()),
        ("OFFRAMP_SECRET_TTL_SECONDS", ttl_s.to_string()),
        ("OFFRAMP_AUDIT_DB", audit_db.display().to_string()),
        ("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".to_string()),
        ("AWS_ENDPOINT_URL", moto::moto_url()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]);
    for (key, value) in psa {
        source.set(*key, value.clone());
    }
    source
}

fn connectwise_secret(private_key: &str) -> String {
    use offramp_sandbox::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PUBLIC_KEY};
    json!({
        "CONNECTWISE_COMPANY_ID": CW_COMPANY_ID,
        "CONNECTWISE_PUBLIC_KEY": CW_PUBLIC_KEY,
        "CONNECTWISE_PRIVATE_KEY": private_key,
        "CONNECTWISE_CLIENT_ID": CW_CLIENT_ID,
    })
    .to_string()
}

/// One vendor's credential rotated while a process runs (a warm Lambda).
struct Rotation {
    /// The settings besides the secret (PSA name, URLs; other secrets).
    psa: fn(&Sandbox) -> Vec<(&'static str, String)>,
    /// The setting that names the rotated secret (`OFFRAMP_SECRET_ID`, `OFFRAMP_SECRET_NOTIFIER`).
    secret_setting: &'static str,
    /// A PSA secret of its own (`OFFRAMP_SECRET_PSA`) beside the rotated one, with this JSON.
    psa_secret: Option<fn() -> String>,
    /// The secret's JSON with this credential value.
    secret: fn(&str) -> String,
    old: &'static str,
    rotated: &'static str,
    /// The call made before and after the rotation.
    probe: Probe,
    /// The vendor rotates: from now on only `rotated` is accepted.
    rotate_at_vendor: fn(&Sandbox, &str),
    /// Requests (or token requests) the vendor saw with a value.
    presented: fn(&Sandbox, &str) -> u64,
}

/// A call that presents the rotated credential.
enum Probe {
    /// Read a company that exists on the PSA.
    Company(&'static str),
    /// Send a notification through the configured notifier.
    Mail,
}

impl Probe {
    async fn succeeds(&self, services: &offramp::app::Services) -> bool {
        match self {
            Probe::Company(id) => services.psa.company_by_id(id).await.expect("company").is_some(),
            Probe::Mail => {
                let mail = offramp::domain::Notification {
                    to: vec!["tech@msp.example".into()],
                    subject: "rotation".into(),
                    text: "a rotated secret".into(),
                };
                services.notifier.as_ref().expect("a notifier").send(&mail).await.is_ok()
            }
        }
    }
}

/// Build the adapters from a secret cached for `ttl_s`, read a company, rotate the
/// credential at the vendor and in Secrets Manager (moto), let the cache expire if it is
/// short, read three times more. Returns the requests the vendor saw after the rotation
/// with the old value, and with the new one.
async fn rotate_and_count(rotation: &Rotation, ttl_s: u64) -> (u64, u64) {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox");
    let client = moto::secrets_client().await;
    let name = moto::unique_secret_name();
    create_secret(&client, &name, &(rotation.secret)(rotation.old)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = (rotation.psa)(&sandbox);
    if let Some(psa_secret) = rotation.psa_secret {
        let psa_name = moto::unique_secret_name();
        create_secret(&client, &psa_name, &psa_secret()).await;
        settings.push(("OFFRAMP_SECRET_PSA", psa_name));
    }
    let source = rotating_source(&settings, rotation.secret_setting, &name, ttl_s, &dir.path().join("a.sqlite"));
    let services = offramp::app::build(&source).await.expect("adapters");
    assert!(rotation.probe.succeeds(&services).await, "before the rotation");
    let old_before = (rotation.presented)(&sandbox, rotation.old);

    (rotation.rotate_at_vendor)(&sandbox, rotation.rotated);
    let rotated_secret = (rotation.secret)(rotation.rotated);
    client.put_secret_value().secret_id(&name).secret_string(rotated_secret).send().await.expect("rotate");
    if ttl_s == 1 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    for _ in 0..3 {
        assert!(rotation.probe.succeeds(&services).await, "after the rotation");
    }
    let old_after = (rotation.presented)(&sandbox, rotation.old) - old_before;
    (old_after, (rotation.presented)(&sandbox, rotation.rotated))
}

/// A ConnectWise key rotated while the process runs is picked up without a restart: the
/// sandbox refuses the old key and counts every request per key presented. With a long
/// cache, the first request after the rotation is refused once, the store is read again,
/// and that request and every later one go with the new key; with a cache that has
/// expired, the old key is never sent again at all.
#[tokio::test]
async fn a_rotated_connectwise_key_is_picked_up_without_a_restart() {
    let rotation = Rotation {
        psa: |sandbox| vec![("OFFRAMP_PSA", "connectwise".to_string()), ("CONNECTWISE_URL", sandbox.connectwise_url())],
        secret_setting: "OFFRAMP_SECRET_ID",
        psa_secret: None,
        secret: connectwise_secret,
        old: offramp_sandbox::CW_PRIVATE_KEY,
        rotated: "rotated-private-key-2",
        probe: Probe::Company("250"),
        rotate_at_vendor: |sandbox, key| sandbox.connectwise().rotate_private_key(key),
        presented: |sandbox, key| sandbox.connectwise().requests_with_private_key(key),
    };
    for (ttl_s, old_after) in [(3600, 1), (1, 0)] {
        // The new key: once per call after the rotation.
        assert_eq!(rotate_and_count(&rotation, ttl_s).await, (old_after, 3), "cache of {ttl_s} s");
    }
}

fn halo_secret(client_secret: &str) -> String {
    json!({ "HALO_CLIENT_ID": offramp_sandbox::HALO_CLIENT_ID, "HALO_CLIENT_SECRET": client_secret }).to_string()
}

/// The same for HaloPSA's OAuth client secret: the application's secret is rotated (the
/// sandbox then refuses the old one and revokes the tokens it issued). The next request is
/// refused (401), a new token is asked for, with the cached secret first when the cache is
/// still fresh (refused once; the store is read again), and with the new one directly when
/// it has expired. The sandbox counts token requests per secret presented.
#[tokio::test]
async fn a_rotated_halo_client_secret_is_picked_up_without_a_restart() {
    let rotation = Rotation {
        psa: |sandbox| {
            vec![
                ("OFFRAMP_PSA", "halo".to_string()),
                ("HALO_URL", sandbox.halo_url()),
                ("HALO_TENANT", offramp_sandbox::HALO_TENANT.to_string()),
            ]
        },
        secret_setting: "OFFRAMP_SECRET_PSA",
        psa_secret: None,
        secret: halo_secret,
        old: offramp_sandbox::HALO_CLIENT_SECRET,
        rotated: "rotated-halo-secret-2",
        probe: Probe::Company("270"),
        rotate_at_vendor: |sandbox, secret| sandbox.halo().rotate_client_secret(secret),
        presented: |sandbox, secret| sandbox.halo().token_requests_with_secret(secret),
    };
    for (ttl_s, old_after) in [(3600, 1), (1, 0)] {
        // One token, with the new secret.
        assert_eq!(rotate_and_count(&rotation, ttl_s).await, (old_after, 1), "cache of {ttl_s} s");
    }
}

fn graph_secret(client_secret: &str) -> String {
    json!({ "GRAPH_CLIENT_ID": offramp_sandbox::GRAPH_CLIENT_ID, "GRAPH_CLIENT_SECRET": client_secret }).to_string()
}

/// The same for the Graph notifier's client secret, kept in the notifier's own secret
/// (`OFFRAMP_SECRET_NOTIFIER`) beside a PSA secret that holds a wrong Graph secret: the
/// notifier's credential is read from its integration's secret only. Entra refuses the old
/// secret after the rotation; Graph refuses the tokens issued with it.
#[tokio::test]
async fn a_rotated_graph_client_secret_is_picked_up_without_a_restart() {
    let rotation = Rotation {
        psa: |sandbox| {
            vec![
                ("OFFRAMP_PSA", "connectwise".to_string()),
                ("CONNECTWISE_URL", sandbox.connectwise_url()),
                ("OFFRAMP_NOTIFIER", "graph".to_string()),
                ("GRAPH_AUTHORITY_URL", sandbox.entra_url()),
                ("GRAPH_URL", sandbox.graph_url()),
                ("GRAPH_TENANT_ID", offramp_sandbox::GRAPH_TENANT_ID.to_string()),
                ("GRAPH_SENDER", offramp_sandbox::GRAPH_SENDER.to_string()),
            ]
        },
        psa_secret: Some(psa_secret_with_a_decoy),
        secret_setting: "OFFRAMP_SECRET_NOTIFIER",
        secret: graph_secret,
        old: offramp_sandbox::GRAPH_CLIENT_SECRET,
        rotated: "rotated-graph-secret-2",
        probe: Probe::Mail,
        rotate_at_vendor: |sandbox, secret| sandbox.notify().rotate_client_secret(secret),
        presented: |sandbox, secret| sandbox.notify().token_requests_with_secret(secret),
    };
    for (ttl_s, old_after) in [(3600, 1), (1, 0)] {
        assert_eq!(rotate_and_count(&rotation, ttl_s).await, (old_after, 1), "cache of {ttl_s} s");
    }
}

/// The sandbox's ConnectWise keys and a decoy Graph secret that Entra would refuse.
fn psa_secret_with_a_decoy() -> String {
    let mut secret: serde_json::Value =
        serde_json::from_str(&connectwise_secret(offramp_sandbox::CW_PRIVATE_KEY)).expect("json");
    secret["GRAPH_CLIENT_SECRET"] = json!("decoy-in-the-psa-secret");
    secret.to_string()
}

/// The value of `secret` (an ARN or name) as Secrets Manager holds it, read through the SDK;
/// `version` `None` reads the current one.
async fn stored_value(client: &aws_sdk_secretsmanager::Client, secret: &str, version: Option<&str>) -> String {
    let out = client.get_secret_value().secret_id(secret).set_version_id(version.map(str::to_string)).send().await;
    out.expect("get secret value").secret_string().expect("a string secret").to_string()
}

/// No form of `password` in what the vault answered.
fn assert_no_value(what: &str, shown: &str, password: &SecretString) {
    for form in offramp_sandbox::leaks::forms(password.expose()) {
        assert!(!shown.contains(&form), "{what}: the password in {shown}");
    }
}

#[tokio::test]
async fn secret_vault_stores_a_password_then_a_new_version_under_the_same_name() {
    let client = moto::secrets_client().await;
    let prefix = moto::unique_name("offramp/offboarded-users-test");
    let vault = SecretsManagerVault::new(client.clone(), format!("{prefix}/")).expect("vault");
    assert_eq!(vault.prefix(), prefix, "the trailing / dropped");
    let name = "8b1f4c2e-6d3a-4e59-9f70-1a2b3c4d5e6f/lee.leaver@contoso.example";

    let first_password = generate_password(24);
    let first = vault.store(name, &first_password, "Lee Leaver's password, offboarding op-1").await.expect("store");
    assert!(first.reference.starts_with("arn:aws:secretsmanager:"), "{first:?}");
    assert!(first.reference.contains(&format!("{prefix}/{name}")), "{first:?}");
    for shown in [format!("{first:?}"), serde_json::to_string(&first).unwrap()] {
        assert_no_value("the first reference", &shown, &first_password);
    }
    assert_eq!(stored_value(&client, &first.reference, None).await, first_password.expose());
    let described = client.describe_secret().secret_id(&first.reference).send().await.expect("describe");
    assert_eq!(described.description(), Some("Lee Leaver's password, offboarding op-1"));

    // The same leaver again: a new version of the same secret, the old one still readable.
    let second_password = generate_password(24);
    let second = vault.store(name, &second_password, "again").await.expect("store again");
    assert_eq!(second.reference, first.reference);
    assert!(second.version_id.is_some() && second.version_id != first.version_id, "{first:?} {second:?}");
    assert_no_value("the second reference", &format!("{second:?}"), &second_password);
    assert_eq!(stored_value(&client, &second.reference, None).await, second_password.expose());
    let old = stored_value(&client, &first.reference, first.version_id.as_deref()).await;
    assert_eq!(old, first_password.expose());
}

#[tokio::test]
async fn secret_vault_refuses_names_secrets_manager_would_and_shows_no_value_in_errors() {
    let client = moto::secrets_client().await;
    let refused = SecretsManagerVault::new(client.clone(), "offramp/offboarded users").unwrap_err();
    assert!(matches!(refused, SecretError::InvalidName { .. }), "{refused}");
    let prefix = moto::unique_name("offramp/offboarded-users-test");
    let vault = SecretsManagerVault::new(client.clone(), &prefix).expect("vault");
    let password = generate_password(20);
    for bad in ["tenant/lee leaver@contoso.example", "tenant/lee#1", "tenant/user-abcdef"] {
        let error = vault.store(bad, &password, "refused").await.unwrap_err();
        assert!(matches!(error, SecretError::InvalidName { .. }), "{bad}: {error}");
        assert_no_value(bad, &format!("{error} {error:?}"), &password);
    }
    let listed = client.list_secrets().send().await.expect("list secrets");
    assert!(listed.secret_list().iter().all(|s| !s.name().unwrap_or_default().starts_with(&prefix)), "nothing stored");

    // Secrets Manager out of reach (a closed loopback port, no retries): the SDK's error,
    // which describes the request the value was in, reaches the caller without it.
    let config = aws_sdk_secretsmanager::config::Builder::from(&moto::aws_config().await)
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let unreachable = aws_sdk_secretsmanager::Client::from_conf(config);
    let vault = SecretsManagerVault::new(unreachable, &prefix).expect("vault");
    let error = vault.store("tenant/lee.leaver@contoso.example", &password, "unreachable").await.unwrap_err();
    assert!(matches!(error, SecretError::Unavailable { .. }), "{error}");
    assert_no_value("a refused store", &format!("{error} {error:?}"), &password);
}
