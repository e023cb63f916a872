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
//! cli/tests/cli_secrets.rs, the Lambda binary's own log in lambda_watch.rs.

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
struct Buffer(Arc<Mutex<Vec<u8>>>);

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
        let everything = self.everything();
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
        assert!(everything.contains("[REDACTED]"), "{what}: the echoed credential never came back: {everything}");
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
    let answer = handle(function, &services, event, "lambda:test").await;
    drop(services);
    let log = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    Traces { answer, log, audit: audit_bytes(dir) }
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
    for (key, value) in [
        ("OFFRAMP_NOTIFIER", "graph".to_string()),
        ("GRAPH_AUTHORITY_URL", sandbox.entra_url()),
        ("GRAPH_URL", sandbox.graph_url()),
        ("GRAPH_TENANT_ID", GRAPH_TENANT_ID.to_string()),
        ("GRAPH_CLIENT_ID", GRAPH_CLIENT_ID.to_string()),
        ("GRAPH_CLIENT_SECRET", GRAPH_SECRET.to_string()),
        ("GRAPH_SENDER", GRAPH_SENDER.to_string()),
        // The requester's domain is allow-listed, so the run gets as far as the mail.
        ("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "client.example".to_string()),
    ] {
        source.set(key, value);
    }
    let event = json!({"company_id": 270, "confirmation": true, "reason": "leak test",
        "initiated_by": "tech@msp.example", "requester_email": "boss@client.example"});
    let traces = run(&source, dir.path(), Function::DeactivateContacts, event).await;
    assert!(traces.everything().contains("AADSTS7000215"), "Entra refused the secret: {}", traces.answer);
    assert!(sandbox.sent_mail().is_empty());
    traces.assert_clean("Graph", &forms(GRAPH_SECRET));
}
