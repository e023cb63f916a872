//! The `offramp` binary against the ConnectWise sandbox, as an MSP engineer runs it.

use crate::common;
use std::path::Path;

use std::process::{Command, Stdio};

use common::{json, run};
use std::time::{Duration, Instant};

use offramp_sandbox::{ITGLUE_API_KEY, PsaSim, Sandbox, SandboxConfig};

fn offramp(sandbox: &Sandbox, audit_db: &Path) -> Command {
    common::offramp_for(sandbox, "connectwise", audit_db)
}

fn with_env(command: Command, sandbox: &Sandbox, audit_db: &Path) -> Command {
    common::with_env(command, sandbox, "connectwise", audit_db)
}

async fn sandbox(large: usize) -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: large, ..SandboxConfig::default() }).await.unwrap()
}

#[tokio::test]
async fn dry_run_then_confirmed_run_then_audit() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");

    let mut plan = offramp(&sandbox, &db);
    plan.args([
        "configs",
        "deactivate",
        "--client-name",
        "Contoso Dental",
        "--dry-run",
        "--json",
        "--offboarded-status",
        "Offboarded",
    ]);
    let out = run(plan).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["statistics"]["configs_deactivated"], 9);
    assert_eq!(sandbox.stats().patches(), 0);

    // Without a terminal and without --yes, a run that changes data is refused: not
    // confirmed, exit 5 like every other command.
    let mut unconfirmed = offramp(&sandbox, &db);
    unconfirmed.args(["configs", "deactivate", "--client-id", "250"]);
    let out = run(unconfirmed).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(sandbox.stats().patches(), 0);

    // Approving a plan hash that is not the current plan is refused.
    let mut stale = offramp(&sandbox, &db);
    stale.args(["configs", "deactivate", "--client-id", "250", "--approve", &"0".repeat(64), "--json"]);
    let out = run(stale).await;
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(json(&out)["errors"][0]["code"], "PlanChanged");
    assert_eq!(sandbox.stats().patches(), 0);

    // Approving the dry run's plan hash applies it.
    let mut approved = offramp(&sandbox, &db);
    approved.args([
        "configs",
        "deactivate",
        "--client-id",
        "250",
        "--json",
        "--approve",
        report["plan_hash"].as_str().unwrap(),
    ]);
    let out = run(approved).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let applied = json(&out);
    assert_eq!(applied["statistics"]["configs_deactivated"], 9);
    assert_eq!(sandbox.stats().patches(), 9);

    // The table output for people.
    let mut table = offramp(&sandbox, &db);
    table.args(["configs", "deactivate", "--client-id", "250", "--yes"]);
    let out = run(table).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Firewall - HQ") && text.contains("deactivated 0, skipped 11"), "{text}");

    let mut list = offramp(&sandbox, &db);
    list.args(["audit", "list", "--json"]);
    let out = run(list).await;
    let operations = json(&out);
    let ops = operations.as_array().unwrap();
    assert_eq!(ops.len(), 4, "dry run, refused approval, applied run, re-run");
    assert_eq!(ops[1]["operation"]["operation_id"], applied["operation_id"]);
    assert_eq!(ops[1]["operation"]["initiated_by"], common::RECORDED_INITIATOR, "the OS user, on behalf of the flag");

    let mut show = offramp(&sandbox, &db);
    show.args(["audit", "show", applied["operation_id"].as_str().unwrap()]);
    let out = run(show).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Contoso Dental") && text.contains("completed") && text.contains("Firewall - HQ"), "{text}");
}

#[tokio::test]
async fn bad_credentials_exit_with_permission_denied_and_no_key_in_output() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = offramp(&sandbox, &dir.path().join("audit.sqlite"));
    command.env("CONNECTWISE_PRIVATE_KEY", "not-the-key-PLUGH").args([
        "configs",
        "deactivate",
        "--client-id",
        "250",
        "--dry-run",
        "--json",
    ]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(json(&out)["errors"][0]["code"], "PermissionDenied");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("not-the-key-PLUGH"), "{all}");
}

/// The process is killed (SIGKILL) half-way through 10,000 configurations; `--resume`
/// finishes the rest and no configuration is changed twice.
#[tokio::test]
async fn a_killed_run_is_resumed_without_double_changes() {
    let sandbox = sandbox(10_000).await;
    sandbox.set_latency(Duration::from_millis(2));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let mut command = offramp(&sandbox, &db);
    command
        // Northwind (300) is not offboarded: deactivated on purpose, as the flag records.
        .args(["configs", "deactivate", "--client-id", "300", "--yes", "--json", "--override-blast-radius"])
        .arg("--allow-active-client")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let start = Instant::now();
    while sandbox.stats().patches() < 1_000 {
        assert!(start.elapsed() < Duration::from_secs(120), "run did not progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    let done_before = sandbox.stats().patches();
    assert!(done_before < 10_000, "killed half-way: {done_before}");

    let mut list = offramp(&sandbox, &db);
    list.args(["audit", "list", "--json"]);
    let operations = json(&run(list).await);
    let operation_id = operations[0]["operation"]["operation_id"].as_str().unwrap().to_string();

    sandbox.set_latency(Duration::ZERO);
    // The killed process still holds the client's lease (2 minutes without renewal): a
    // resume is refused with its own exit code, naming the operation, until the lease
    // expires or is broken knowingly.
    let mut busy = offramp(&sandbox, &db);
    busy.args(["configs", "deactivate", "--resume", &operation_id, "--json"]);
    let out = run(busy).await;
    assert_eq!(out.status.code(), Some(10), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OperationInProgress"));
    let mut resume = offramp(&sandbox, &db);
    resume.args(["configs", "deactivate", "--resume", &operation_id, "--break-lease", "--json"]);
    let out = run(resume).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["statistics"]["configs_deactivated"], 10_000);
    assert_eq!(sandbox.stats().patches(), 10_000, "every configuration patched exactly once in total");
    let cw = sandbox.connectwise();
    assert!(cw.configurations_of(300).iter().all(|c| cw.patch_count(c["id"].as_i64().unwrap()) == 1));
}

/// On a terminal (a pty made by `script`), a run that changes data shows the plan and
/// applies it only after the engineer types "yes".
#[tokio::test]
async fn on_a_terminal_the_plan_is_confirmed_before_anything_changes() {
    use std::io::Write;
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    for (answer, patches, code) in [("no", 0, 5), ("yes", 9, 0)] {
        let inner = format!("{} configs deactivate --client-id 250", env!("CARGO_BIN_EXE_offramp"));
        let mut command = with_env(Command::new("script"), &sandbox, &db);
        let transcript = dir.path().join(format!("{answer}.txt"));
        command
            .args(["-qec", &inner, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&transcript).unwrap())
            .stderr(Stdio::null());
        let status = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("script (bsdutils)");
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "{answer}").unwrap();
            // Keep stdin open until the program has read its answer and exited.
            let status = child.wait().unwrap();
            drop(stdin);
            status
        })
        .await
        .unwrap();
        let text = std::fs::read_to_string(&transcript).unwrap();
        assert_eq!(status.code(), Some(code), "{text}");
        assert!(text.contains("PLAN (dry run, nothing changed)") && text.contains("Type 'yes'"), "{text}");
        assert_eq!(sandbox.stats().patches(), patches, "after answering {answer}: {text}");
    }
}

/// `OFFRAMP_PSA` chooses the PSA; the commands, flags and JSON are the same on each.
#[tokio::test]
async fn the_same_commands_work_on_autotask_and_halo() {
    for psa in ["autotask", "halo"] {
        let sandbox = sandbox(0).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.sqlite");
        let command = || common::offramp_for(&sandbox, psa, &db);
        let mut plan = command();
        plan.args(["configs", "deactivate", "--client-name", "contoso dental", "--dry-run", "--json"]);
        plan.args(["--offboarded-status", "Inactive"]);
        let out = run(plan).await;
        assert_eq!(out.status.code(), Some(0), "{psa}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["statistics"]["configs_deactivated"], 9, "{psa}");
        assert_eq!(sandbox.stats().patches(), 0, "{psa}");

        let mut apply = command();
        apply.args(["configs", "deactivate", "--client-id", "250", "--yes", "--json"]);
        let out = run(apply).await;
        assert_eq!(out.status.code(), Some(0), "{psa}: {}", String::from_utf8_lossy(&out.stderr));
        let report = json(&out);
        assert_eq!(report["statistics"]["configs_deactivated"], 9, "{psa}: {report}");
        assert_eq!(sandbox.stats().patches(), 9, "{psa}");

        // An active client is refused by the configured criteria (the inactive flag), and
        // by offboarded statuses given on top; --allow-active-client plans it, recorded.
        let mut refused = command();
        refused.args(["configs", "deactivate", "--client-id", "100", "--yes", "--json"]);
        let out = run(refused).await;
        assert_eq!(out.status.code(), Some(5), "{psa}");
        assert_eq!(json(&out)["errors"][0]["code"], "ClientNotOffboarded", "{psa}");
        let mut refused = command();
        refused.args(["configs", "deactivate", "--client-id", "100", "--offboarded-status", "Inactive", "--yes"]);
        assert_eq!(run(refused).await.status.code(), Some(5), "{psa}");
        assert_eq!(sandbox.stats().patches(), 9, "{psa}: nothing more changed");
        let mut allowed = command();
        allowed.args(["configs", "deactivate", "--client-id", "100", "--allow-active-client", "--dry-run", "--json"]);
        let out = run(allowed).await;
        assert_eq!(out.status.code(), Some(0), "{psa}: {}", String::from_utf8_lossy(&out.stderr));
        let warnings = json(&out)["warnings"].to_string();
        assert!(warnings.contains("allow_active_client"), "{psa}: {warnings}");
    }
}

/// Autotask's hourly budget: the run stops cleanly with exit code 9 and a resume
/// finishes it once there is budget again.
#[tokio::test]
async fn a_spent_autotask_budget_exits_9_and_the_run_resumes() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let mut tight = common::offramp_for(&sandbox, "autotask", &db);
    tight.env("AUTOTASK_HOURLY_BUDGET", "12").env("AUTOTASK_BUDGET_RESERVE", "0");
    tight.args(["configs", "deactivate", "--client-id", "250", "--yes", "--json"]);
    let out = run(tight).await;
    assert_eq!(out.status.code(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let operation_id = report["operation_id"].as_str().unwrap().to_string();
    assert!(report["errors"].as_array().unwrap().iter().any(|e| e["code"] == "RequestBudgetExhausted"), "{report}");
    let done = sandbox.stats().patches();
    assert!(done < 9, "{done}");

    // A new process with the default budget (the sandbox's database has plenty left).
    let mut resume = common::offramp_for(&sandbox, "autotask", &db);
    resume.args(["configs", "deactivate", "--resume", &operation_id, "--yes", "--json"]);
    let out = run(resume).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["statistics"]["configs_deactivated"], 9);
    assert_eq!(sandbox.stats().patches(), 9, "nothing deactivated twice");
}

/// `offramp settings`, `offramp contacts deactivate` and `offramp rollback`, as an MSP
/// engineer runs them: a client setting changes the run, the plan needs --confirmation,
/// the run is rolled back, and a configuration deactivation is rolled back too.
#[tokio::test]
async fn contacts_settings_and_rollback_from_the_command_line() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let cli = |args: &[&str]| {
        let mut command = offramp(&sandbox, &db);
        command.args(args);
        run(command)
    };

    let set = cli(&["settings", "set", "250", "psa_contact_preserve_primary", "true"]).await;
    assert_eq!(set.status.code(), Some(0), "{}", String::from_utf8_lossy(&set.stderr));
    let bad = cli(&["settings", "set", "250", "psa_contact_preserve_primary", "maybe"]).await;
    assert_eq!(bad.status.code(), Some(3), "a bad value is refused");
    let unknown = cli(&["settings", "set", "global", "psa_contact_no_such_key", "1"]).await;
    assert_eq!(unknown.status.code(), Some(3));
    let got = cli(&["settings", "get", "250", "psa_contact_preserve_primary"]).await;
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "true (client)");
    let other = cli(&["settings", "get", "270", "psa_contact_preserve_primary"]).await;
    assert_eq!(String::from_utf8_lossy(&other.stdout).trim(), "false (default)");

    // Without --confirmation (and no terminal): the plan, exit 5, nothing changed.
    let plan = cli(&["contacts", "deactivate", "--company-id", "250", "--exclude-contact", "5003", "--json"]).await;
    assert_eq!(plan.status.code(), Some(5), "{}", String::from_utf8_lossy(&plan.stderr));
    let plan = json(&plan);
    assert_eq!(plan["status"], "confirmation_required");
    assert_eq!(plan["deactivation_summary"]["contacts_deactivated"], 4, "the client setting keeps 5001");
    assert_eq!(sandbox.connectwise().contact_is_active(5002), Some(true));

    let done = cli(&[
        "contacts",
        "deactivate",
        "--company-id",
        "250",
        "--exclude-contact",
        "5003",
        "--confirmation",
        "--ticket-id",
        "9010",
        "--reason",
        "Contract terminated",
        "--json",
    ])
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", String::from_utf8_lossy(&done.stderr));
    let done = json(&done);
    assert_eq!(done["deactivation_summary"]["contacts_deactivated"], 4);
    assert_eq!(done["related_updates"]["open_tickets_reassigned"], 2);
    assert_eq!(sandbox.connectwise().contact_is_active(5002), Some(false));
    let operation_id = done["audit_trail"]["operation_id"].as_str().unwrap().to_string();

    // A rollback without --yes and without a terminal is refused; --dry-run shows; --yes restores.
    let refused = cli(&["rollback", &operation_id]).await;
    assert_eq!(refused.status.code(), Some(5), "not confirmed");
    let preview = cli(&["rollback", &operation_id, "--dry-run", "--json"]).await;
    assert_eq!(json(&preview)["statistics"]["restored"], 9);
    let undo = cli(&["rollback", &operation_id, "--yes", "--json"]).await;
    assert_eq!(undo.status.code(), Some(0), "{}", String::from_utf8_lossy(&undo.stderr));
    assert_eq!(json(&undo)["statistics"]["restored"], 9);
    assert_eq!(sandbox.connectwise().contact_is_active(5002), Some(true));
    // A completed rollback is final: a second one is refused (exit 5), naming the first,
    // and changes nothing.
    let updates = sandbox.connectwise().contact_update_count(5002);
    let again = cli(&["rollback", &operation_id, "--yes", "--json"]).await;
    assert_eq!(again.status.code(), Some(5), "{}", String::from_utf8_lossy(&again.stderr));
    let again = json(&again);
    assert_eq!(again["errors"][0]["code"], "RollbackRefused", "{again}");
    assert!(again["errors"][0]["message"].as_str().unwrap().contains(json(&undo)["operation_id"].as_str().unwrap()));
    assert_eq!(sandbox.connectwise().contact_update_count(5002), updates, "a second rollback changes nothing");

    // Configuration deactivation rolls back the same way.
    let configs = cli(&["configs", "deactivate", "--client-id", "250", "--yes", "--json"]).await;
    let configs = json(&configs);
    assert_eq!(configs["statistics"]["configs_deactivated"], 9);
    let config_op = configs["operation_id"].as_str().unwrap().to_string();
    let undo = cli(&["rollback", &config_op, "--yes", "--json"]).await;
    assert_eq!(json(&undo)["statistics"]["restored"], 9);
    assert_eq!(sandbox.connectwise().configuration(25001).unwrap()["status"]["id"], 1, "back to Active");
    let plan_op = plan["audit_trail"]["operation_id"].as_str().unwrap().to_string();
    let refused = cli(&["rollback", &plan_op, "--yes", "--json"]).await;
    assert_eq!(refused.status.code(), Some(5), "a plan changed nothing to roll back");
}

/// "Not confirmed" is one exit code (5, `ConfirmationRequired`) for every command that
/// changes data, and nothing changes: without a terminal and without --yes (or the
/// command's own confirmation flag), configs, contacts, rollback and IT Glue all refuse.
#[tokio::test]
async fn not_confirmed_exits_5_for_every_destructive_command() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let cli = |args: &[&str]| {
        let mut command = offramp(&sandbox, &db);
        command.env("ITGLUE_URL", sandbox.itglue_url()).env("ITGLUE_API_KEY", ITGLUE_API_KEY).args(args);
        run(command)
    };
    let applied = cli(&["configs", "deactivate", "--client-id", "250", "--yes", "--json"]).await;
    let operation_id = json(&applied)["operation_id"].as_str().unwrap().to_string();
    let (patches, contact_updates) = (sandbox.stats().patches(), sandbox.connectwise().contact_update_count(5002));

    for args in [
        vec!["configs", "deactivate", "--client-id", "270"],
        vec!["contacts", "deactivate", "--company-id", "250"],
        vec!["rollback", &operation_id],
        vec!["itglue", "delete", "--org-id", "9002"],
    ] {
        let out = cli(&args).await;
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(sandbox.stats().patches(), patches, "no configuration changed or restored");
    assert_eq!(sandbox.connectwise().contact_update_count(5002), contact_updates, "no contact changed");
    assert!(sandbox.itglue().organization_exists(9002) && sandbox.itglue().deletions_requested() == 0);
}

/// `--yes` applies without a prompt on every destructive command, contacts included (the
/// same as the seed's `--confirmation`).
#[tokio::test]
async fn contacts_take_yes_like_every_destructive_command() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let mut command = offramp(&sandbox, &db);
    command.args(["contacts", "deactivate", "--company-id", "250", "--exclude-contact", "5003", "--yes", "--json"]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["deactivation_summary"]["contacts_deactivated"], 5, "{report}");
    assert_eq!(sandbox.connectwise().contact_is_active(5002), Some(false), "applied in the PSA");
    assert_eq!(sandbox.connectwise().contact_is_active(5003), Some(true), "the excluded contact stays");
}

/// `offramp --help` lists every exit code and the error codes behind it, from the same
/// table the CLI exits with.
#[tokio::test]
async fn help_lists_the_exit_codes() {
    let out = run({
        let mut command = Command::new(env!("CARGO_BIN_EXE_offramp"));
        command.arg("--help");
        command
    })
    .await;
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    for line in
        ["   5  refused", "  10  another run", "ConfirmationRequired", "OperationInProgress", "PSAConnectionError"]
    {
        assert!(help.contains(line), "{line:?} not in {help}");
    }
}

/// Run `offramp ARGS` on a pty (made by `script`), typing `answer`; its exit code and transcript.
async fn on_terminal(sandbox: &Sandbox, db: &Path, args: &str, answer: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let inner = format!("{} {args}", env!("CARGO_BIN_EXE_offramp"));
    let transcript = db.with_extension(format!("{}.txt", answer.len()));
    let mut command = with_env(Command::new("script"), sandbox, db);
    command
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&transcript).unwrap())
        .stderr(Stdio::null());
    let answer = answer.to_string();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("script (bsdutils)");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{answer}").unwrap();
        let status = child.wait().unwrap();
        drop(stdin);
        status
    })
    .await
    .unwrap();
    (status.code(), std::fs::read_to_string(&transcript).unwrap())
}

/// On a terminal, contacts and rollback go through the same preview and question as
/// configurations: "no" exits 5 and changes nothing, "yes" applies the plan shown.
#[tokio::test]
async fn on_a_terminal_contacts_and_rollback_are_confirmed_the_same_way() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let cw = sandbox.connectwise();
    let contacts = "contacts deactivate --company-id 250 --exclude-contact 5003";
    let (code, text) = on_terminal(&sandbox, &db, contacts, "no").await;
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("Type 'yes' to apply this plan") && text.contains("Not confirmed"), "{text}");
    assert_eq!((cw.contact_is_active(5002), cw.contact_update_count(5002)), (Some(true), 0), "{text}");
    let (code, text) = on_terminal(&sandbox, &db, contacts, "yes").await;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(cw.contact_is_active(5002), Some(false), "{text}");

    let mut list = offramp(&sandbox, &db);
    list.args(["audit", "list", "--json"]);
    let operations = json(&run(list).await);
    let applied = operations.as_array().unwrap().iter().find(|o| o["operation"]["dry_run"] == false).unwrap();
    let rollback = format!("rollback {}", applied["operation"]["operation_id"].as_str().unwrap());
    let (code, text) = on_terminal(&sandbox, &db, &rollback, "no").await;
    assert_eq!(code, Some(5), "{text}");
    assert_eq!(cw.contact_is_active(5002), Some(false), "not restored: {text}");
    let (code, text) = on_terminal(&sandbox, &db, &rollback, "yes").await;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(cw.contact_is_active(5002), Some(true), "restored: {text}");
}

/// Text that reaches people is clean from the command line too: a bidi override or a
/// zero-width space in `--reason`, `--initiated-by` or `--requester-email` is invalid input
/// (exit 3) naming the field, on every command that changes data, and the sandbox counts no
/// change. (The rollback's target need not exist: the text is checked before it is read,
/// which is why this is 3 and not 4.)
#[tokio::test]
async fn invisible_characters_in_free_text_exit_3_on_every_command() {
    let sandbox = sandbox(0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let (bidi, zero_width) = ("Offboarded \u{202E}txt.exe", "admin\u{200B}@msp.example");
    let cases: [(&[&str], &str); 6] = [
        (&["configs", "deactivate", "--client-id", "250", "--reason", bidi], "reason"),
        (&["configs", "deactivate", "--client-id", "250", "--initiated-by", zero_width], "initiated_by"),
        (&["contacts", "deactivate", "--company-id", "250", "--reason", bidi], "reason"),
        (&["contacts", "deactivate", "--company-id", "250", "--requester-email", zero_width], "requester_email"),
        (&["rollback", "0190c3a0-0000-7000-8000-000000000001", "--reason", bidi], "reason"),
        (&["itglue", "delete", "--org-id", "9002", "--confirm-delete", "--reason", bidi], "reason"),
    ];
    for (args, field) in cases {
        let mut command = offramp(&sandbox, &db);
        command.env("ITGLUE_URL", sandbox.itglue_url()).env("ITGLUE_API_KEY", ITGLUE_API_KEY);
        command.args(args).args(["--yes", "--json"]);
        let out = run(command).await;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(3), "{args:?}: {text}");
        assert!(text.contains("InvalidInput") && text.contains(field), "{args:?}: {text}");
    }
    assert_eq!(sandbox.stats().patches(), 0, "nothing changed");
    assert_eq!(sandbox.itglue().deletions_requested(), 0);
    assert!(sandbox.sent_mail().is_empty() && sandbox.webhook_posts().is_empty());
}
