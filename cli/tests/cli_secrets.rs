//! The `offramp` process at `RUST_LOG=trace` never shows a credential, in any form, on
//! stdout, on stderr (its log) or in its SQLite audit files, even when the vendor's refusal
//! echoes the credential it refused (the simulators do, as some real APIs do).
//! The secrets hold `+/=&"\` so that every encoded form differs from the raw one; the same
//! runs through the Lambda handler are in tests/integration/secret_leaks.rs.

use crate::common;
use std::path::Path;
use std::process::{Command, Output};

use offramp_sandbox::leaks::{basic_token, forms};
use offramp_sandbox::{CW_COMPANY_ID, GRAPH_CLIENT_ID, GRAPH_SENDER, GRAPH_TENANT_ID, Sandbox, SandboxConfig};

const CW_PRIVATE: &str = r#"cli"Priv\ate+/=&key"#;
const AT_SECRET: &str = r#"cli"AtSec\ret+/=&4"#;
const HALO_SECRET: &str = r#"cli"Halo\Sec+/=& 9"#;
const ITGLUE_KEY: &str = r#"ITG.cli"glue\Key+/=&5"#;
const GRAPH_SECRET: &str = r#"cli"Graph\Sec+/=&~3"#;

/// Run at trace level; fail if any form of `secrets` is in stdout, stderr or the audit files.
async fn assert_nothing_leaks(mut command: Command, dir: &Path, what: &str, secrets: &[String]) -> Output {
    command.env("RUST_LOG", "trace");
    let out = common::run(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut audit = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        audit.extend(std::fs::read(entry.path()).unwrap_or_default());
    }
    let audit = String::from_utf8_lossy(&audit).into_owned();
    assert!(stderr.contains("TRACE"), "{what}: the log is not at trace level: {stderr}");
    for secret in secrets {
        for (place, text) in [("stdout", &stdout), ("stderr", &stderr), ("the audit trail", &audit)] {
            assert!(!text.contains(secret.as_str()), "{what}: {secret:?} on {place}:\n{text}");
        }
    }
    assert!(
        format!("{stdout}{stderr}").contains("[REDACTED]"),
        "{what}: the echoed credential never came back:\n{stdout}\n{stderr}"
    );
    out
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, halo_rate_limit: None, ..SandboxConfig::default() })
        .await
        .unwrap()
}

fn deactivate(sandbox: &Sandbox, psa: &str, db: &Path) -> Command {
    let mut command = common::offramp_for(sandbox, psa, db);
    command.args(["configs", "deactivate", "--client-id", "250", "--yes", "--json"]);
    command
}

#[tokio::test]
async fn no_psa_credential_leaks_at_trace_level() {
    for (psa, name, value) in [
        ("connectwise", "CONNECTWISE_PRIVATE_KEY", CW_PRIVATE),
        ("autotask", "AUTOTASK_SECRET", AT_SECRET),
        ("halo", "HALO_CLIENT_SECRET", HALO_SECRET),
    ] {
        let sandbox = sandbox().await;
        let dir = tempfile::tempdir().unwrap();
        let mut command = deactivate(&sandbox, psa, &dir.path().join("audit.sqlite"));
        command.env(name, value);
        let mut secrets = forms(value);
        if psa == "connectwise" {
            secrets.extend(basic_token(CW_COMPANY_ID, offramp_sandbox::CW_PUBLIC_KEY, value));
        }
        let out = assert_nothing_leaks(command, dir.path(), psa, &secrets).await;
        assert_eq!(out.status.code(), Some(6), "{psa}: permission denied");
    }
}

/// A HaloPSA token without `edit:assets`: the 403 quotes the bearer token the CLI obtained.
#[tokio::test]
async fn no_halo_access_token_leaks_at_trace_level() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = deactivate(&sandbox, "halo", &dir.path().join("audit.sqlite"));
    command.env("HALO_SCOPE", "read:customers read:assets");
    // Tokens are random: run, then look for every token the sandbox issued.
    command.env("RUST_LOG", "trace");
    let out = common::run(command).await;
    let tokens = sandbox.halo().issued_tokens();
    assert!(!tokens.is_empty());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("edit:assets") && text.contains("[REDACTED]"), "{text}");
    for token in &tokens {
        for form in forms(token) {
            assert!(!text.contains(&form), "token {form} leaked:\n{text}");
        }
    }
    let audit = std::fs::read(dir.path().join("audit.sqlite")).unwrap();
    assert!(!tokens.iter().any(|t| String::from_utf8_lossy(&audit).contains(t.as_str())));
}

#[tokio::test]
async fn no_itglue_or_graph_credential_leaks_at_trace_level() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut itglue = common::offramp_for(&sandbox, "connectwise", &dir.path().join("audit.sqlite"));
    itglue.env("ITGLUE_URL", sandbox.itglue_url()).env("ITGLUE_API_KEY", ITGLUE_KEY);
    itglue.args(["itglue", "delete", "--org-id", "9002", "--yes", "--json"]);
    let out = assert_nothing_leaks(itglue, dir.path(), "IT Glue", &forms(ITGLUE_KEY)).await;
    assert_eq!(out.status.code(), Some(6), "permission denied");
    assert!(sandbox.itglue().organization_exists(9002));

    let dir = tempfile::tempdir().unwrap();
    let mut contacts = common::offramp_for(&sandbox, "connectwise", &dir.path().join("audit.sqlite"));
    contacts
        .env("OFFRAMP_NOTIFIER", "graph")
        .env("GRAPH_AUTHORITY_URL", sandbox.entra_url())
        .env("GRAPH_URL", sandbox.graph_url())
        .env("GRAPH_TENANT_ID", GRAPH_TENANT_ID)
        .env("GRAPH_CLIENT_ID", GRAPH_CLIENT_ID)
        .env("GRAPH_CLIENT_SECRET", GRAPH_SECRET)
        .env("GRAPH_SENDER", GRAPH_SENDER)
        .env("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "client.example");
    contacts.args([
        "contacts",
        "deactivate",
        "--company-id",
        "270",
        "--requester-email",
        "boss@client.example",
        "--yes",
        "--json",
    ]);
    let out = assert_nothing_leaks(contacts, dir.path(), "Graph", &forms(GRAPH_SECRET)).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("AADSTS7000215"), "Entra refused the secret");
    assert!(sandbox.sent_mail().is_empty());
}
