//! No credential reaches what an operator or a log reader sees, in any form it travels in.
//!
//! The simulators echo the credential they refused in their 401/403 bodies (as some real
//! APIs do), so a refusal is a way for a secret to come back in. Each run goes through the
//! Lambda handler (`offramp::entry::handle`) with adapters built from settings, logging at
//! `trace` through the very subscriber the Lambda installs (`offramp::logging`), and the
//! test greps the answer, the whole log and every file of the SQLite audit trail for each
//! secret raw, base64, percent-encoded and JSON-escaped (and the ConnectWise Basic token).
//! The secrets hold `+/=&"\` so that every encoded form differs from the raw one.
//!
//! The CLI's own process (stdout, stderr at `RUST_LOG=trace`) is covered in
//! cli/tests/cli_secrets.rs, the Lambda binary's own log in lambda_watch.rs, the AD bind
//! password and a password the LDAP adapter resets in onprem_ldap.rs (`onprem_ldap_logs_no_password`,
//! with [`forms`] and [`Buffer`] from here).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use offramp::config::ConfigSource;
use offramp::entry::{Function, handle};
use offramp::logging::{LogFormat, capture};
use offramp_sandbox::{CW_COMPANY_ID, GRAPH_CLIENT_ID, GRAPH_SENDER, GRAPH_TENANT_ID, Sandbox, SandboxConfig};
use offramp_tests::psa::source;
use serde_json::{Value, json};

use offramp::domain::PsaKind;

/// Secrets with characters that every encoding changes.
const CW_PRIVATE: &str = r#"cw"Priv\ate+/=&key"#;
const CW_PUBLIC: &str = r#"cwPub"lic+/=&\k"#;
const AT_SECRET: &str = r#"at"Sec\ret+/=&42"#;
const AT_CODE: &str = r#"AT"Code\+/=&7"#;
const HALO_SECRET: &str = r#"halo"Sec\ret+/=& 9"#;
const ITGLUE_KEY: &str = r#"ITG.it"glue\Key+/=&5"#;
const GRAPH_SECRET: &str = r#"gr"aph\Sec+/=&ret~3"#;

pub(crate) use offramp_sandbox::leaks::{basic_token, forms};

#[derive(Clone, Default)]
pub(crate) struct Buffer(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run left behind: the handler's answer, the trace log, the audit files.
struct Traces {
    answer: Value,
    log: String,
    audit: Vec<u8>,
}

impl Traces {
    fn everything(&self) -> String {
        format!("{}\n{}\n{}", self.answer, self.log, String::from_utf8_lossy(&self.audit))
    }

    /// No form of any of `secrets` anywhere; and the refusal's echo did reach us (redacted).
    fn assert_clean(&self, what: &str, secrets: &[String]) {
        self.assert_no_credential(what, secrets);
        let everything = self.everything();
        assert!(everything.contains("[REDACTED]"), "{what}: the echoed credential never came back: {everything}");
    }

    /// No form of any of `secrets` in the answer, the trace log or the audit trail.
    fn assert_no_credential(&self, what: &str, secrets: &[String]) {
        for secret in secrets {
            assert!(!secret.is_empty());
            for (place, text) in [
                ("the answer", self.answer.to_string()),
                ("the log", self.log.clone()),
                ("the audit trail", String::from_utf8_lossy(&self.audit).into_owned()),
            ] {
                assert!(!text.contains(secret.as_str()), "{what}: {secret:?} in {place}:\n{text}");
            }
        }
        assert!(self.log.contains("TRACE") || self.log.contains("\"level\":\"TRACE\""), "{what}: not at trace level");
    }
}

fn audit_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() {
            bytes.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    bytes
}

/// Run `event` through `function`'s handler with `source`, logging at `trace` into a buffer.
async fn run(source: &ConfigSource, dir: &Path, function: Function, event: Value) -> Traces {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let _guard = tracing::subscriber::set_default(capture("trace", LogFormat::Json, move || writer.clone()));
    tracing::trace!("trace level on");
    let services = offramp::app::build(source).await.expect("services");
    // Boxed: several runs in one test would otherwise hold every workflow's future on the
    // test thread's stack at once.
    let answer = Box::pin(handle(function, &services, event, "lambda:test")).await;
    drop(services);
    let log = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    // The payload: a Lambda error's message is made of the report's own messages.
    Traces { answer: answer.into_payload(), log, audit: audit_bytes(dir) }
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, halo_rate_limit: None, ..SandboxConfig::default() })
        .await
        .unwrap()
}

fn configs_event(client: &str) -> Value {
    json!({"client_id": client, "initiated_by": "tech@msp.example", "reason": "leak test"})
}

fn first_error(answer: &Value) -> &str {
    answer["errors"][0]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn connectwise_keys_never_leak_in_any_form() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut source = source(&sandbox, PsaKind::ConnectWise, &dir.path().join("audit.sqlite"));
    source.set("CONNECTWISE_PUBLIC_KEY", CW_PUBLIC);
    source.set("CONNECTWISE_PRIVATE_KEY", CW_PRIVATE);
    let traces = run(&source, dir.path(), Function::DeactivateConfigs, configs_event("250")).await;
    assert_eq!(first_error(&traces.answer), "PermissionDenied", "{}", traces.answer);
    assert!(sandbox.stats().total() > 0, "the sandbox refused the keys itself");
    let mut secrets = forms(CW_PRIVATE);
    secrets.extend(forms(CW_PUBLIC));
    secrets.extend(basic_token(CW_COMPANY_ID, CW_PUBLIC, CW_PRIVATE));
    traces.assert_clean("ConnectWise", &secrets);
}

#[tokio::test]
async fn autotask_secret_and_integration_code_never_leak_in_any_form() {
    for (name, value) in [("AUTOTASK_SECRET", AT_SECRET), ("AUTOTASK_INTEGRATION_CODE", AT_CODE)] {
        let sandbox = sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        let mut source = source(&sandbox, PsaKind::Autotask, &dir.path().join("audit.sqlite"));
        source.set(name, value);
        let traces = run(&source, dir.path(), Function::DeactivateConfigs, configs_event("250")).await;
        assert_eq!(first_error(&traces.answer), "PermissionDenied", "{name}: {}", traces.answer);
        traces.assert_clean(name, &forms(value));
    }
}

/// A wrong client secret (the token endpoint quotes the form body it refused, the secret
/// form-encoded), then a token without the scope to write assets: HaloPSA's 403 quotes the
/// bearer token, which the client learned when it obtained it.
#[tokio::test]
async fn halo_secret_and_access_tokens_never_leak_in_any_form() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut source = offramp_tests::psa::source(&sandbox, PsaKind::Halo, &dir.path().join("audit.sqlite"));
    source.set("HALO_CLIENT_SECRET", HALO_SECRET);
    let traces = run(&source, dir.path(), Function::DeactivateConfigs, configs_event("250")).await;
    assert_eq!(first_error(&traces.answer), "PermissionDenied", "{}", traces.answer);
    traces.assert_clean("HaloPSA secret", &forms(HALO_SECRET));

    let dir = tempfile::tempdir().unwrap();
    let mut source = offramp_tests::psa::source(&sandbox, PsaKind::Halo, &dir.path().join("audit.sqlite"));
    source.set("HALO_SCOPE", "read:customers read:assets");
    let traces = run(&source, dir.path(), Function::DeactivateConfigs, configs_event("250")).await;
    let errors = traces.answer["errors"].as_array().unwrap();
    assert!(!errors.is_empty() && errors.iter().all(|e| e["code"] == "PermissionDenied"), "{}", traces.answer);
    assert_eq!(sandbox.halo().asset(25001).unwrap()["inactive"], false, "nothing changed without edit:assets");
    let tokens = sandbox.halo().issued_tokens();
    assert!(!tokens.is_empty());
    let secrets: Vec<String> = tokens.iter().flat_map(|t| forms(t)).collect();
    traces.assert_clean("HaloPSA token", &secrets);
}

#[tokio::test]
async fn itglue_key_never_leaks_in_any_form() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut source = source(&sandbox, PsaKind::ConnectWise, &dir.path().join("audit.sqlite"));
    source.set("ITGLUE_URL", sandbox.itglue_url());
    source.set("ITGLUE_API_KEY", ITGLUE_KEY);
    let event = json!({"org_id": "9002", "confirm_delete": true, "reason": "leak test"});
    let traces = run(&source, dir.path(), Function::DeleteItGlueOrg, event).await;
    assert_eq!(first_error(&traces.answer), "PermissionDenied", "{}", traces.answer);
    assert!(sandbox.itglue().organization_exists(9002));
    traces.assert_clean("IT Glue", &forms(ITGLUE_KEY));
}

/// The contact workflow's notification through Graph with a wrong client secret: Entra's
/// AADSTS7000215 quotes it.
#[tokio::test]
async fn graph_secret_never_leaks_in_any_form() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut source = source(&sandbox, PsaKind::ConnectWise, &dir.path().join("audit.sqlite"));
    for (key, value) in graph_notifier(&sandbox) {
        source.set(key, value);
    }
    // The requester's domain is allow-listed, so the run gets as far as the mail.
    source.set("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "client.example".to_string());
    let event = json!({"company_id": 270, "confirmation": true, "reason": "leak test",
        "initiated_by": "tech@msp.example", "requester_email": "boss@client.example"});
    let traces = run(&source, dir.path(), Function::DeactivateContacts, event).await;
    assert!(traces.everything().contains("AADSTS7000215"), "Entra refused the secret: {}", traces.answer);
    assert!(sandbox.sent_mail().is_empty());
    traces.assert_clean("Graph", &forms(GRAPH_SECRET));
}

/// The vendors accept only the test's secrets from now on (each with `+/=&"\`), so that a
/// successful run presents every one of them.
fn rotate_every_vendor(sandbox: &Sandbox) {
    sandbox.connectwise().rotate_private_key(CW_PRIVATE);
    sandbox.autotask().rotate_credentials(AT_SECRET, AT_CODE);
    sandbox.halo().rotate_client_secret(HALO_SECRET);
    sandbox.notify().rotate_client_secret(GRAPH_SECRET);
    sandbox.itglue().rotate_api_key(ITGLUE_KEY);
}

/// Settings for `kind` with the test's secrets, the Graph notifier and IT Glue.
fn sweep_source(sandbox: &Sandbox, kind: PsaKind, dir: &Path) -> ConfigSource {
    let mut source = source(sandbox, kind, &dir.join("audit.sqlite"));
    for (key, value) in [
        ("CONNECTWISE_PRIVATE_KEY", CW_PRIVATE.to_string()),
        ("AUTOTASK_SECRET", AT_SECRET.to_string()),
        ("AUTOTASK_INTEGRATION_CODE", AT_CODE.to_string()),
        ("HALO_CLIENT_SECRET", HALO_SECRET.to_string()),
        ("ITGLUE_URL", sandbox.itglue_url()),
        ("ITGLUE_API_KEY", ITGLUE_KEY.to_string()),
        ("OFFRAMP_ITGLUE_POLL_SECONDS", "1".to_string()),
        // 9002 is linked to an active client: the deletion does not ask the PSA.
        ("OFFRAMP_ITGLUE_PSA_POLICY", "off".to_string()),
    ]
    .into_iter()
    .chain(graph_notifier(sandbox))
    {
        source.set(key, value);
    }
    source
}

/// The Graph mail notifier against the sandbox, with the test's client secret.
fn graph_notifier(sandbox: &Sandbox) -> [(&'static str, String); 7] {
    [
        ("OFFRAMP_NOTIFIER", "graph".to_string()),
        ("GRAPH_AUTHORITY_URL", sandbox.entra_url()),
        ("GRAPH_URL", sandbox.graph_url()),
        ("GRAPH_TENANT_ID", GRAPH_TENANT_ID.to_string()),
        ("GRAPH_CLIENT_ID", GRAPH_CLIENT_ID.to_string()),
        ("GRAPH_CLIENT_SECRET", GRAPH_SECRET.to_string()),
        ("GRAPH_SENDER", GRAPH_SENDER.to_string()),
    ]
}

/// Every form of every credential the sweep's runs presented, and of every bearer token
/// the vendors issued to them.
fn every_credential(sandbox: &Sandbox) -> Vec<String> {
    let mut secrets: Vec<String> =
        [CW_PRIVATE, AT_SECRET, AT_CODE, HALO_SECRET, GRAPH_SECRET, ITGLUE_KEY].iter().flat_map(|s| forms(s)).collect();
    secrets.extend(basic_token(CW_COMPANY_ID, offramp_sandbox::CW_PUBLIC_KEY, CW_PRIVATE));
    let tokens = [sandbox.halo().issued_tokens(), sandbox.notify().issued_tokens()].concat();
    secrets.extend(tokens.iter().flat_map(|t| forms(t)));
    secrets
}

/// Each workflow that succeeds, run through the Lambda handler at `trace` with credentials
/// the vendors accept: the configuration deactivation (dry run, then for real), its
/// rollback, the contact deactivation with its ticket note and e-mail (Graph), and the IT
/// Glue deletion with its export. No form of any credential or token reaches the answers,
/// the trace log or the audit trail. (The tests above cover what vendors echo on refusal.)
#[tokio::test]
async fn every_workflow_at_trace_level_leaks_no_credential_on_any_psa() {
    for kind in [PsaKind::ConnectWise, PsaKind::Autotask, PsaKind::Halo] {
        let sandbox = sandbox().await;
        sandbox.set_itglue_deletion_delay(std::time::Duration::from_millis(100));
        rotate_every_vendor(&sandbox);
        let dir = tempfile::tempdir().unwrap();
        let source = sweep_source(&sandbox, kind, dir.path());
        let mut answers = Vec::new();
        let mut configs = configs_event("250");
        if kind == PsaKind::ConnectWise {
            // Autotask's and HaloPSA's clients are offboarded by being inactive (the default).
            configs["offboarded_statuses"] = json!(["Offboarded"]);
        }
        configs["dry_run"] = json!(true);
        answers.push(run(&source, dir.path(), Function::DeactivateConfigs, configs.clone()).await);
        configs["dry_run"] = json!(false);
        let deactivated = run(&source, dir.path(), Function::DeactivateConfigs, configs).await;
        let operation_id = deactivated.answer["operation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind:?}: {}", deactivated.answer))
            .to_string();
        answers.push(deactivated);
        let rollback = json!({"operation_id": operation_id, "dry_run": false, "reason": "leak sweep"});
        answers.push(run(&source, dir.path(), Function::Rollback, rollback).await);
        let contacts = json!({"company_id": 270, "confirmation": true, "reason": "leak sweep",
            "initiated_by": "tech@msp.example", "requester_email": "tech@msp.example"});
        answers.push(run(&source, dir.path(), Function::DeactivateContacts, contacts).await);
        let itglue = json!({"org_id": "9002", "confirm_delete": true, "reason": "leak sweep",
            "initiated_by": "tech@msp.example"});
        answers.push(run(&source, dir.path(), Function::DeleteItGlueOrg, itglue).await);

        for traces in &answers {
            assert!(traces.answer["errors"].as_array().is_none_or(Vec::is_empty), "{kind:?}: {}", traces.answer);
        }
        assert_eq!(sandbox.sent_mail().len(), 1, "{kind:?}: the notification went out");
        assert!(!sandbox.itglue().organization_exists(9002), "{kind:?}: the organization was deleted");
        let secrets = every_credential(&sandbox);
        assert!(secrets.len() > 30, "the tokens issued are part of the sweep");
        for traces in &answers {
            traces.assert_no_credential(&format!("{kind:?}"), &secrets);
        }
    }
}
