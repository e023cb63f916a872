//! `offramp itglue delete` (seed 002) as an MSP engineer runs it, against the sandbox's
//! IT Glue simulator (and its ConnectWise, for the PSA-offboarded policy).

use crate::common;
use std::path::Path;

use std::process::{Command, Output, Stdio};

use common::{json, run};

use offramp_sandbox::{ITGLUE_API_KEY, Sandbox, SandboxConfig};

fn offramp(sandbox: &Sandbox, audit_db: &Path, args: &[&str]) -> Command {
    let mut command = with_env(Command::new(env!("CARGO_BIN_EXE_offramp")), sandbox, audit_db);
    command.args(args);
    command
}

/// ConnectWise (for the PSA-offboarded policy) and the sandbox's IT Glue.
fn with_env(command: Command, sandbox: &Sandbox, audit_db: &Path) -> Command {
    let mut command = common::with_env(command, sandbox, "connectwise", audit_db);
    command
        .env("ITGLUE_URL", sandbox.itglue_url())
        .env("ITGLUE_API_KEY", ITGLUE_API_KEY)
        .env("OFFRAMP_ITGLUE_POLL_SECONDS", "1")
        .env("OFFRAMP_ITGLUE_DELETION_WAIT_SECONDS", "10");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn dry_run_refusals_and_a_confirmed_deletion_with_its_audit_record() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_itglue_deletion_delay(std::time::Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");

    // A dry run: the seed's JSON, dependents counted, nothing deleted.
    let out =
        run(offramp(&sandbox, &db, &["itglue", "delete", "--org-name", "contoso dental", "--dry-run", "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!((report["org_id"].as_str(), report["deleted"].as_bool()), (Some("9001"), Some(false)));
    assert_eq!(report["dependency_check"]["configs_found"], 4);
    assert_eq!(report["dependency_check"]["documents_found"], 2);
    assert_eq!(report["dependency_check"]["assets_found"], 3);
    assert_eq!(report["dependency_check"]["blocked"], true);

    // Refusals and their exit codes: invalid (3), not found (4), blocked / unconfirmed (5).
    for (args, code, error) in [
        (vec!["--org-id", "12 or 1=1", "--confirm-delete"], 3, "InvalidIdentifier"),
        (vec!["--org-name", "Litware Inc", "--confirm-delete"], 3, "InvalidIdentifier"),
        (vec!["--org-id", "424242", "--confirm-delete"], 4, "OrganizationNotFound"),
        (vec!["--org-id", "9001", "--confirm-delete"], 5, "DeletionBlocked"),
        (vec!["--org-id", "9002"], 5, "ConfirmationRequired"),
    ] {
        let mut all = vec!["itglue", "delete", "--json"];
        all.extend(&args);
        let out = run(offramp(&sandbox, &db, &all)).await;
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert_eq!(json(&out)["errors"][0]["code"], error, "{args:?}");
    }
    assert_eq!(sandbox.itglue().deletions_requested(), 0);
    assert_eq!(sandbox.itglue().export_requests(), 0, "no export for a refused run");

    // Confirmed: export first, then the deletion, awaited.
    let out = run(offramp(
        &sandbox,
        &db,
        &["itglue", "delete", "--org-id", "9002", "--confirm-delete", "--reason", "client gone", "--json"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!((report["deleted"].as_bool(), report["status"].as_str()), (Some(true), Some("deleted")));
    assert!(report["export"].get("download_url").is_none(), "the export's link is never in the report: {report}");
    let key = report["archive"]["key"].as_str().expect("the archived copy is in the report").to_string();
    let archived = std::fs::read(dir.path().join("exports").join(&key)).unwrap();
    let export_id: i64 = report["export"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(archived, sandbox.itglue().export_content(export_id), "the bytes IT Glue served");
    assert!(!sandbox.itglue().organization_exists(9002));

    // The trail has the operation and the archived export, never the link; rollback is
    // refused, pointing at the archive.
    let operation = report["operation_id"].as_str().unwrap().to_string();
    let out = run(offramp(&sandbox, &db, &["audit", "show", &operation, "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("itglue_export") && shown.contains(&key), "{shown}");
    let token = offramp_sandbox::export_link_token(export_id);
    assert!(!shown.contains(&token) && !shown.contains("_exports/"), "{shown}");
    assert!(shown.contains("client gone"), "the reason is recorded");
    let out = run(offramp(&sandbox, &db, &["rollback", &operation, "--yes"])).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("export") || String::from_utf8_lossy(&out.stdout).contains("export"));

    // A bad key: permission denied (6), the key never printed.
    let mut bad = offramp(&sandbox, &db, &["itglue", "delete", "--org-id", "9003", "--dry-run", "--json"]);
    bad.env("ITGLUE_API_KEY", "ITG.cli-wrong-key-7f1a");
    let out = run(bad).await;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let all_output = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all_output.contains("cli-wrong-key"), "{all_output}");
}

/// On a terminal (a pty made by `script`) a deletion is previewed and goes ahead only when
/// the organization's name is typed back.
#[tokio::test]
async fn on_a_terminal_the_name_must_be_typed_back() {
    use std::io::Write;
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_itglue_deletion_delay(std::time::Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    for (typed, code, deleted) in [("Adatum", 5, false), ("Adatum Travel", 0, true)] {
        let inner = format!("{} itglue delete --org-id 9002 --confirm-delete", env!("CARGO_BIN_EXE_offramp"));
        let mut command = with_env(Command::new("script"), &sandbox, &db);
        let transcript = dir.path().join(format!("{}.txt", typed.len()));
        command
            .args(["-qec", &inner, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&transcript).unwrap())
            .stderr(Stdio::null());
        let status = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("script (bsdutils)");
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "{typed}").unwrap();
            let status = child.wait().unwrap();
            drop(stdin);
            status
        })
        .await
        .unwrap();
        let text = std::fs::read_to_string(&transcript).unwrap();
        assert_eq!(status.code(), Some(code), "{text}");
        assert!(text.contains("Type the organization's name (Adatum Travel)"), "{text}");
        assert_eq!(!sandbox.itglue().organization_exists(9002), deleted, "after typing {typed:?}: {text}");
    }
}

/// With the PSA policy `off`, `offramp itglue delete` starts with IT Glue's settings alone
/// (no CONNECTWISE_URL, no PSA credentials); with the default policy the same environment
/// is refused at start, naming the missing PSA setting.
#[tokio::test]
async fn with_the_psa_policy_off_no_psa_setting_is_needed() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_itglue_deletion_delay(std::time::Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let itglue_only = |policy: Option<&str>, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_offramp"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OFFRAMP_AUDIT_DB", dir.path().join("audit.sqlite"))
            .env("OFFRAMP_EXPORT_DIR", dir.path().join("exports"))
            .env("ITGLUE_URL", sandbox.itglue_url())
            .env("ITGLUE_API_KEY", ITGLUE_API_KEY)
            .env("OFFRAMP_ITGLUE_POLL_SECONDS", "1")
            .stdin(Stdio::null())
            .args(args);
        if let Some(policy) = policy {
            command.env("OFFRAMP_ITGLUE_PSA_POLICY", policy);
        }
        command
    };
    let delete_adatum = ["itglue", "delete", "--org-id", "9002", "--yes", "--json"];
    let refused = run(itglue_only(None, &delete_adatum)).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("CONNECTWISE_URL"), "{}", stderr(&refused));
    assert!(sandbox.itglue().organization_exists(9002));

    let out = run(itglue_only(Some("off"), &delete_adatum)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["deleted"], true, "{report}");
    assert_eq!(report["archive"]["store"], "local", "{report}");
    assert!(!sandbox.itglue().organization_exists(9002));

    // An organization's own setting (IT Glue id 9007, linked to no PSA company) wins over
    // the global `off`: require_offboarded_psa_company refuses it, still without a PSA.
    let set = ["settings", "set", "9007", "itglue_psa_policy", "require_offboarded_psa_company"];
    let out = run(itglue_only(Some("off"), &set)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(itglue_only(Some("off"), &["itglue", "delete", "--org-id", "9007", "--dry-run", "--json"])).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let message = json(&out)["errors"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("not linked") && message.contains("(organization)"), "{message}");
}
