//! Every sample in `events/` goes through the Lambda handler logic, with adapters built
//! exactly as the Lambda builds them (from settings), and is answered as its trigger must
//! be: API Gateway with the status table's proxy response, any other trigger with the
//! report or, when the run failed or was refused, a Lambda error named by its code.

use std::path::PathBuf;

use offramp::entry::{Answer, Function, FunctionServices, deactivate_configs_event};
use offramp_sandbox::m365::{M365_LEAVER_ID, M365_TENANT_ID};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::connectwise::{assert_seed_shape, source};
use serde_json::Value;

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/deactivate-configs").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

async fn services(sandbox: &Sandbox, dir: &tempfile::TempDir) -> offramp::app::Services {
    offramp::app::build(&source(sandbox, &dir.path().join("audit.sqlite"))).await.expect("services")
}

/// One handled sample: the handler's answer and the sandbox it ran against.
struct Run {
    answer: Answer,
    sandbox: Sandbox,
    _dir: tempfile::TempDir,
    /// The operations the audit trail holds after the run, newest first.
    trail: Vec<offramp::domain::OperationSummary>,
}

impl Run {
    /// The report: the answer itself, or for API Gateway the proxy response's JSON body.
    fn body(&self) -> Value {
        match self.answer["body"].as_str() {
            Some(body) => serde_json::from_str(body).expect("the proxy response's body is JSON"),
            None => self.answer.payload.clone(),
        }
    }

    /// Who the newest operation in the audit trail was recorded as started by.
    fn initiated_by_in_trail(&self) -> String {
        let newest = self.trail.first().unwrap_or_else(|| panic!("no operation recorded: {}", self.answer));
        newest.operation.initiated_by.clone()
    }

    fn operations_in_trail(&self) -> usize {
        self.trail.len()
    }

    fn error_code(&self) -> &str {
        self.answer["errors"][0]["code"].as_str().unwrap_or_default()
    }

    fn contact_active(&self, id: i64) -> Option<bool> {
        self.sandbox.psa("connectwise").contact_is_active(id)
    }

    /// The leaver as the Microsoft 365 simulator holds them.
    fn leaver(&self) -> offramp_sandbox::m365::User {
        self.sandbox.m365().user(M365_TENANT_ID, M365_LEAVER_ID).expect("the leaver")
    }

    fn leaver_mailbox(&self) -> offramp_sandbox::m365::Mailbox {
        self.sandbox.m365().mailbox(M365_TENANT_ID, M365_LEAVER_ID).expect("the leaver's mailbox")
    }

    /// Writes the Microsoft 365 simulator applied, each at most once.
    fn m365_writes(&self) -> usize {
        let writes = self.sandbox.m365().all_writes();
        assert!(writes.values().all(|count| *count == 1), "a write applied twice: {writes:?}");
        writes.len()
    }
}

fn function_of(folder: &str) -> Function {
    match folder {
        "deactivate-configs" => Function::DeactivateConfigs,
        "deactivate-contacts" => Function::DeactivateContacts,
        "rollback" => Function::Rollback,
        "delete-itglue-org" => Function::DeleteItGlueOrg,
        "offboard-user" => Function::OffboardUser,
        other => panic!("events/{other}: no Lambda function handles this folder"),
    }
}

/// `events/{folder}/{file}` through its function's handler, on a fresh ConnectWise sandbox
/// with adapters built from settings as the Lambda builds them (`FunctionServices::build`:
/// webhook notifier, IT Glue, the sandbox's Microsoft 365). A rollback sample first gets an
/// operation to undo: the contact sample `direct-invoke.json`, run the same way.
async fn handled(folder: &str, file: &str) -> Run {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut source = source(&sandbox, &dir.path().join("audit.sqlite"));
    source.set("OFFRAMP_NOTIFIER", "webhook");
    source.set("OFFRAMP_WEBHOOK_URL", sandbox.webhook_url());
    source.set("ITGLUE_URL", sandbox.itglue_url());
    source.set("ITGLUE_API_KEY", offramp_sandbox::ITGLUE_API_KEY);
    source.set("OFFRAMP_ITGLUE_POLL_SECONDS", "1");
    // The monthly cleanup's parameters come from the settings, never from the event: here
    // a dry run over every offboarded company, however recently.
    source.set("OFFRAMP_ITGLUE_CLEANUP_DRY_RUN", "true");
    source.set("OFFRAMP_ITGLUE_OFFBOARDED_DAYS", "0");
    // User offboarding acts in the Microsoft 365 simulator's tenant (client 600's people).
    source.set("MS_LOGIN_URL", sandbox.entra_url());
    source.set("GRAPH_URL", format!("{}/graph", sandbox.base_url()));
    source.set("EXO_URL", sandbox.exchange_url());
    source.set("MS_CLIENT_ID", offramp_sandbox::GRAPH_CLIENT_ID);
    source.set("MS_CLIENT_SECRET", offramp_sandbox::GRAPH_CLIENT_SECRET);
    let function = function_of(folder);
    let services = FunctionServices::build(function, &source).await.expect("services");
    arrange(&sandbox, folder, file);
    let mut event = event_of(folder, file);
    if folder == "rollback" && event["operation_id"] == "REPLACED-BY-THE-TEST" {
        let contacts = event_of("deactivate-contacts", "direct-invoke.json");
        let done = services.handle(Function::DeactivateContacts, contacts, "lambda:test").await;
        event["operation_id"] = done["audit_trail"]["operation_id"].clone();
    }
    let answer = services.handle(function, event, "lambda:test").await;
    let store = offramp::adapters::audit_sqlite::SqliteAuditStore::open(&dir.path().join("audit.sqlite")).unwrap();
    let filter = offramp::domain::OperationFilter { limit: 100, ..Default::default() };
    let trail = offramp::ports::AuditStore::list_operations(&store, &filter).await.unwrap();
    Run { answer, sandbox, _dir: dir, trail }
}

type Check = fn(&Run);

/// How a sample must be answered (`Outcome::lambda_error_type`, the one rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A direct invoke, Step Functions task or schedule that succeeded, or whose plan waits
    /// for a person: the report is the result.
    Report,
    /// API Gateway: a proxy response with this status, never a Lambda error.
    Proxy(u16),
    /// Any other trigger whose run failed or was refused: a Lambda error of this `errorType`.
    Error(&'static str),
}
use Expect::{Error, Proxy, Report};

/// The samples whose failure is the systems' doing, not the event's (a schedule carries no
/// parameters, and a request cannot ask a PSA to refuse it): the sandbox is set to fail first.
fn arrange(sandbox: &Sandbox, folder: &str, file: &str) {
    match (folder, file) {
        // One of Contoso Dental's configurations is locked: the other eight are deactivated.
        ("deactivate-configs", "partial-failure.json") => {
            sandbox.connectwise().fail_configuration_update(25002, 400, "Configuration is locked by an agreement")
        }
        // The PSA rejects the listing of companies (a read it rejects: PSAConnectionError): the
        // sweep cannot start.
        ("deactivate-configs", "scheduled-sweep-psa-refuses.json") => {
            sandbox.fail_route("GET", "company/companies", 400)
        }
        // The PSA refuses the leaver's contact update; hiding the mailbox still happens.
        ("offboard-user", "partial-failure.json") => sandbox.fail_route("PATCH", "company/contacts", 400),
        _ => {}
    }
}

/// The answer is of the expected kind; a Lambda error's message is a JSON object with the
/// primary error's message and, when the report has one, its operation id.
fn assert_answered_as(run: &Run, expect: Expect, sample: &str) {
    let answer = &run.answer;
    match expect {
        Report => assert_eq!(answer.error, None, "{sample}: the report, not a Lambda error: {answer}"),
        Proxy(status) => {
            assert_eq!(answer.error, None, "{sample}: API Gateway never gets a Lambda error: {answer}");
            assert_eq!(answer["statusCode"], status, "{sample}: {answer}");
        }
        Error(error_type) => {
            let error = answer.error.as_ref().unwrap_or_else(|| panic!("{sample}: a Lambda error, got {answer}"));
            assert_eq!(error.error_type, error_type, "{sample}: {answer}");
            let message: Value = serde_json::from_str(&error.error_message).expect("errorMessage is JSON");
            assert!(message["message"].as_str().is_some_and(|m| !m.is_empty()), "{sample}: {message}");
            let operation = answer.operation_id();
            assert_eq!(message["operation_id"].as_str(), operation, "{sample}: {message}");
        }
    }
}

/// The IAM user the API Gateway samples were signed by (`requestContext`).
const API_CALLER: &str = "arn:aws:iam::123456789012:user/msp-automation";

/// Lee Leaver's PSA contact at client 600 (tests/support/offboarding.rs).
const LEAVER_CONTACT: i64 = offramp_tests::offboarding::LEAVER_CONTACT;

/// Every file under `events/`, how it must be answered, and what its handler must have done.
const SAMPLES: &[(&str, &str, Expect, Check)] = &[
    ("deactivate-configs", "active-client.json", Error("ClientNotOffboarded"), |r| {
        assert_seed_shape(&r.answer);
        assert_eq!(r.error_code(), "ClientNotOffboarded", "{}", r.answer);
        let message = r.answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("Offboarded") && message.contains("allow_active_client"), "{message}");
        assert_eq!(r.sandbox.stats().patches(), 0, "an active client is refused");
    }),
    ("deactivate-configs", "api-gateway-retry.json", Proxy(200), |r| {
        assert_eq!(r.answer["statusCode"], 200, "{}", r.answer);
        assert_seed_shape(&r.body());
        assert_eq!(r.body()["statistics"]["configs_deactivated"], 9);
        assert_eq!(r.sandbox.stats().patches(), 9);
    }),
    ("deactivate-configs", "api-gateway.json", Proxy(200), |r| {
        assert_eq!(r.answer["statusCode"], 200, "{}", r.answer);
        assert_seed_shape(&r.body());
        assert_eq!(r.body()["dry_run"], true);
        assert_eq!(r.sandbox.stats().patches(), 0);
        let by = format!("iam:{API_CALLER} (on behalf of psa-automation)");
        assert_eq!(r.initiated_by_in_trail(), by, "the IAM principal, the body only on behalf of");
    }),
    ("deactivate-configs", "direct-invoke.json", Report, |r| {
        assert_seed_shape(&r.answer);
        assert_eq!(r.answer["success"], true, "{}", r.answer);
        assert_eq!(r.answer["statistics"]["configs_deactivated"], 9);
        assert_eq!(r.sandbox.stats().patches(), 9);
    }),
    ("deactivate-configs", "dry-run.json", Report, |r| {
        assert_seed_shape(&r.answer);
        assert_eq!(r.answer["dry_run"], true, "{}", r.answer);
        assert_eq!(r.answer["statistics"]["configs_found"], 12, "include_archived lists the Disposed one");
        assert_eq!(r.sandbox.stats().patches(), 0);
    }),
    ("deactivate-configs", "http-api.json", Proxy(200), |r| {
        assert_eq!(r.answer["statusCode"], 200, "{}", r.answer);
        assert_seed_shape(&r.body());
        assert_eq!((r.body()["client_id"].as_str(), r.body()["dry_run"].as_bool()), (Some("250"), Some(true)));
        assert_eq!(r.sandbox.stats().patches(), 0);
        let by = format!("iam:{API_CALLER} (on behalf of psa-automation)");
        assert_eq!(r.initiated_by_in_trail(), by, "the IAM principal, the body only on behalf of");
    }),
    ("deactivate-configs", "http-api-unsigned.json", Proxy(401), |r| {
        assert_eq!(r.body()["errors"][0]["code"], "Unauthenticated", "{}", r.answer);
        assert_eq!(r.sandbox.stats().total(), 0, "nothing read without a principal");
        assert_eq!(r.operations_in_trail(), 0, "nothing recorded");
    }),
    ("deactivate-configs", "invalid-input.json", Error("InvalidInput"), |r| {
        assert_seed_shape(&r.answer);
        assert_eq!((r.answer["success"].as_bool(), r.error_code()), (Some(false), "InvalidInput"), "{}", r.answer);
        assert!(r.answer["errors"][0]["message"].as_str().unwrap().contains("dryrun"), "{}", r.answer);
        assert_eq!(r.sandbox.stats().total(), 0, "nothing read for invalid input");
    }),
    ("deactivate-configs", "partial-failure.json", Error("ConfigUpdateFailed"), |r| {
        assert_seed_shape(&r.answer);
        assert_eq!(
            (r.answer["success"].as_bool(), r.error_code()),
            (Some(false), "ConfigUpdateFailed"),
            "{}",
            r.answer
        );
        assert_eq!(r.answer["statistics"]["configs_deactivated"], 8, "the others went on: {}", r.answer);
        assert!(r.answer.operation_id().is_some(), "a Catch can name the operation");
    }),
    ("deactivate-configs", "scheduled-sweep.json", Report, |r| {
        assert_eq!(r.answer["success"], true, "{}", r.answer);
        let operations = r.answer["operations"].as_array().unwrap();
        let mut clients: Vec<&str> = operations.iter().map(|o| o["client_id"].as_str().unwrap()).collect();
        clients.sort_unstable();
        assert_eq!(clients, ["250", "270", "410", "411"]);
        operations.iter().for_each(assert_seed_shape);
    }),
    ("deactivate-configs", "scheduled-sweep-psa-refuses.json", Error("PSAConnectionError"), |r| {
        assert_eq!(
            (r.answer["success"].as_bool(), r.error_code()),
            (Some(false), "PSAConnectionError"),
            "{}",
            r.answer
        );
        assert!(r.answer["operations"].as_array().is_some_and(Vec::is_empty), "{}", r.answer);
        assert_eq!(r.sandbox.stats().patches(), 0);
    }),
    ("deactivate-configs", "scheduled-sweep-spoofed.json", Error("InvalidInput"), |r| {
        assert_eq!(r.error_code(), "InvalidInput", "{}", r.answer);
        let message = r.answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("offboarded_statuses") && message.contains("configuration"), "{message}");
        assert_eq!(r.sandbox.stats().total(), 0, "nothing read, nothing changed");
    }),
    ("deactivate-contacts", "api-gateway.json", Proxy(200), |r| {
        assert_eq!(r.answer["statusCode"], 200, "{}", r.answer);
        assert_eq!(r.body()["deactivation_summary"]["company_id"], 270);
        assert_eq!(r.body()["dry_run"], true);
        assert_eq!(r.sandbox.stats().patches(), 0, "a dry run changes nothing");
    }),
    ("deactivate-contacts", "direct-invoke.json", Report, |r| {
        assert_eq!(r.answer["success"], true, "{}", r.answer);
        assert!(r.initiated_by_in_trail().starts_with("lambda:test"), "the invoked function: {}", r.answer);
        assert_eq!(r.answer["deactivation_summary"]["contacts_deactivated"], 4);
        assert_eq!(r.answer["ticket_id"], "9010");
        assert_eq!(r.contact_active(5002), Some(false));
        assert_eq!(r.sandbox.webhook_posts().len(), 1, "notified through the configured webhook");
    }),
    ("deactivate-contacts", "dry-run.json", Report, |r| {
        assert_eq!((r.answer["success"].as_bool(), r.answer["dry_run"].as_bool()), (Some(true), Some(true)));
        assert_eq!(r.answer["deactivation_summary"]["contacts_deactivated"], 4, "{}", r.answer);
        assert_eq!(r.contact_active(5002), Some(true));
    }),
    ("deactivate-contacts", "invalid-input.json", Error("InvalidInput"), |r| {
        assert_eq!(r.error_code(), "InvalidInput", "{}", r.answer);
        assert_eq!(r.sandbox.stats().total(), 0);
    }),
    ("deactivate-contacts", "missing-confirmation.json", Report, |r| {
        assert_eq!(r.answer["status"], "confirmation_required", "{}", r.answer);
        assert_eq!(r.contact_active(5002), Some(true));
    }),
    // The nightly contact sweep (tests/integration/contact_sweep.rs counts each contact).
    ("deactivate-contacts", "scheduled-sweep.json", Report, |r| {
        assert_eq!(r.answer["success"], true, "{}", r.answer);
        assert!(r.answer["clients_processed"].as_u64().is_some_and(|n| n > 0), "{}", r.answer);
        assert_eq!(r.contact_active(5002), Some(false), "Parity Clinic (270) is offboarded: swept");
        assert_eq!(r.operations_in_trail(), r.answer["operations"].as_array().unwrap().len());
    }),
    ("deactivate-contacts", "step-functions.json", Report, |r| {
        assert_eq!(r.answer["success"], true, "{}", r.answer);
        assert_eq!(r.answer["deactivation_summary"]["contacts_deactivated"], 2);
        let by = "states:arn:aws:states:us-east-1:123456789012:execution:offramp-client-offboarding:\
                  api-0190c3a0-0000-7000-8000-000000000001 (on behalf of tech@msp.example)";
        assert_eq!(r.initiated_by_in_trail(), by, "the execution, the body only on behalf of");
    }),
    ("delete-itglue-org", "api-gateway.json", Proxy(200), |r| {
        assert_eq!(r.answer["statusCode"], 200, "{}", r.answer);
        assert_eq!((r.body()["success"].as_bool(), r.body()["deleted"].as_bool()), (Some(true), Some(false)));
    }),
    ("delete-itglue-org", "blocked.json", Error("DeletionBlocked"), |r| {
        assert_eq!(r.error_code(), "DeletionBlocked", "{}", r.answer);
        assert_eq!(r.sandbox.itglue().deletions_requested(), 0);
    }),
    ("delete-itglue-org", "direct-invoke.json", Report, |r| {
        assert_eq!(r.answer["deleted"], true, "{}", r.answer);
        assert_eq!(r.answer["org_id"], "9002");
        assert!(!r.sandbox.itglue().organization_exists(9002));
    }),
    ("delete-itglue-org", "dry-run.json", Report, |r| {
        assert_eq!((r.answer["success"].as_bool(), r.answer["deleted"].as_bool()), (Some(true), Some(false)));
        assert_eq!(r.sandbox.itglue().deletions_requested(), 0);
    }),
    ("delete-itglue-org", "invalid-identifier.json", Error("InvalidIdentifier"), |r| {
        assert_eq!(r.error_code(), "InvalidIdentifier", "{}", r.answer);
    }),
    ("delete-itglue-org", "missing-confirmation.json", Report, |r| {
        assert_eq!(r.error_code(), "ConfirmationRequired", "{}", r.answer);
        assert_eq!(r.sandbox.itglue().deletions_requested(), 0);
    }),
    ("delete-itglue-org", "scheduled-cleanup-spoofed.json", Error("InvalidInput"), |r| {
        assert_eq!(r.error_code(), "InvalidInput", "{}", r.answer);
        assert!(r.answer["errors"][0]["message"].as_str().unwrap().contains("offboarded_days"), "{}", r.answer);
        assert_eq!(r.sandbox.itglue().deletions_requested(), 0);
        assert_eq!(r.sandbox.stats().total(), 0, "the PSA was not read");
    }),
    ("delete-itglue-org", "scheduled-cleanup.json", Report, |r| {
        assert_eq!(r.answer["dry_run"], true, "the configured dry run: {}", r.answer);
        assert!(r.answer["organizations"].as_array().is_some_and(|o| !o.is_empty()), "{}", r.answer);
        assert_eq!(r.sandbox.itglue().deletions_requested(), 0);
    }),
    ("offboard-user", "api-gateway.json", Proxy(200), |r| {
        assert_eq!(r.answer["statusCode"], 200, "{}", r.answer);
        assert_eq!(r.body()["status"], "completed", "{}", r.answer);
        assert_eq!(r.body()["initiated_by"], format!("iam:{API_CALLER}"), "the IAM principal: {}", r.answer);
        assert!(!r.leaver().account_enabled && r.leaver().sign_in_sessions_valid_from.is_some());
        assert!(r.leaver_mailbox().hidden_from_address_lists);
        assert_eq!(r.contact_active(LEAVER_CONTACT), Some(true), "not asked for");
        assert_eq!(r.m365_writes(), 3, "account, sessions, GAL: {}", r.answer);
    }),
    ("offboard-user", "direct-invoke.json", Report, |r| {
        assert_eq!((r.answer["success"].as_bool(), r.answer["status"].as_str()), (Some(true), Some("completed")));
        let tasks = r.answer["tasks"].as_array().unwrap();
        assert!(tasks.iter().all(|t| t["result"] == "done" || t["result"] == "skipped"), "{}", r.answer);
        let lee = r.leaver();
        assert!(!lee.account_enabled && lee.employee_id.is_none() && lee.manager_id.is_none(), "{lee:?}");
        assert_eq!(lee.password_resets, 1);
        assert!(r.sandbox.m365().licences(M365_TENANT_ID, M365_LEAVER_ID).is_empty());
        let mailbox = r.leaver_mailbox();
        assert_eq!(format!("{:?}", mailbox.kind), "Shared");
        assert!(mailbox.hidden_from_address_lists && mailbox.mobile_devices.is_empty());
        assert_eq!(r.contact_active(LEAVER_CONTACT), Some(false));
        assert!(r.m365_writes() > 10);
        assert_eq!(r.sandbox.webhook_posts().len(), 1, "the manager told through the configured channel");
    }),
    ("offboard-user", "dry-run.json", Report, |r| {
        assert_eq!((r.answer["status"].as_str(), r.answer["dry_run"].as_bool()), (Some("planned"), Some(true)));
        assert!(r.answer["plan_hash"].is_string() && !r.answer["tasks"].as_array().unwrap().is_empty());
        assert_eq!(r.m365_writes(), 0, "a plan changes nothing");
        assert!(r.leaver().account_enabled);
        assert_eq!(r.contact_active(LEAVER_CONTACT), Some(true));
    }),
    ("offboard-user", "invalid-input.json", Error("InvalidInput"), |r| {
        assert_eq!(r.error_code(), "InvalidInput", "{}", r.answer);
        assert!(r.answer["errors"][0]["message"].as_str().unwrap().contains("disable_acount"), "{}", r.answer);
        assert_eq!(r.sandbox.stats().total(), 0, "nothing read");
        assert_eq!(r.m365_writes(), 0);
    }),
    ("offboard-user", "not-yet-effective.json", Error("NotYetEffective"), |r| {
        assert_eq!(r.error_code(), "NotYetEffective", "{}", r.answer);
        assert!(r.answer["errors"][0]["message"].as_str().unwrap().contains("2099-01-31"), "{}", r.answer);
        assert_eq!(r.sandbox.stats().total(), 0, "refused before anything is read");
        assert_eq!(r.m365_writes(), 0);
    }),
    ("offboard-user", "partial-failure.json", Error("ActionFailed"), |r| {
        assert_eq!(r.answer["status"], "partial", "{}", r.answer);
        assert!(r.leaver_mailbox().hidden_from_address_lists, "the other task was done");
        assert_eq!(r.contact_active(LEAVER_CONTACT), Some(true), "the PSA refused it");
    }),
    ("offboard-user", "scheduled-event.json", Error("InvalidInput"), |r| {
        assert_eq!(r.error_code(), "InvalidInput", "{}", r.answer);
        assert!(r.answer["errors"][0]["message"].as_str().unwrap().contains("no schedule"), "{}", r.answer);
        assert_eq!(r.m365_writes(), 0);
    }),
    ("rollback", "direct-invoke.json", Report, |r| {
        assert_eq!(r.answer["success"], true, "{}", r.answer);
        assert!(r.answer["rolled_back_operation_id"].is_string());
        assert_eq!(r.contact_active(5002), Some(true), "restored");
    }),
    ("rollback", "dry-run.json", Report, |r| {
        assert_eq!(r.answer["dry_run"], true, "{}", r.answer);
        assert_eq!(r.contact_active(5002), Some(false), "a preview restores nothing");
    }),
    ("rollback", "invalid-input.json", Error("InvalidInput"), |r| {
        assert_eq!(r.error_code(), "InvalidInput", "{}", r.answer);
    }),
];

/// Every file under `events/` goes through its Lambda handler and its answer is checked;
/// a sample without an expectation here (or an expectation without its file) fails.
#[tokio::test]
async fn every_sample_event_is_handled() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut on_disk: Vec<(String, String)> = Vec::new();
    for folder in std::fs::read_dir(&root).unwrap().flatten() {
        let folder_name = folder.file_name().to_string_lossy().into_owned();
        if folder_name == "webhook" {
            // The webhook function's samples: webhook_function::every_webhook_sample_event_is_handled.
            continue;
        }
        if folder_name == "api" {
            continue; // the HTTP API function's events: tests/integration/api.rs answers each
        }
        for file in std::fs::read_dir(folder.path()).unwrap().flatten() {
            on_disk.push((folder_name.clone(), file.file_name().to_string_lossy().into_owned()));
        }
    }
    on_disk.sort();
    let mut expected: Vec<(String, String)> =
        SAMPLES.iter().map(|(folder, file, _, _)| (folder.to_string(), file.to_string())).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "every sample under events/ needs an expected answer here");
    for (folder, file, expect, check) in SAMPLES {
        eprintln!("events/{folder}/{file}");
        let run = handled(folder, file).await;
        assert_answered_as(&run, *expect, &format!("events/{folder}/{file}"));
        check(&run);
    }
}

/// The Lambda picks its PSA from `OFFRAMP_PSA`; the nightly sweep works on all three,
/// each with its documented default meaning of "offboarded" (ConnectWise: the configured
/// status names; Autotask and HaloPSA: the company is inactive).
#[tokio::test]
async fn scheduled_event_sweeps_offboarded_clients_on_every_psa() {
    for kind in offramp_tests::psa::ALL {
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let source = offramp_tests::psa::source(&sandbox, kind, &dir.path().join("audit.sqlite"));
        let services = offramp::app::build(&source).await.expect("services");
        assert_eq!(services.psa.kind(), kind);
        let out = deactivate_configs_event(&services, event("scheduled-sweep.json"), "lambda:test").await;
        assert_eq!(out["success"], Value::Bool(true), "{kind}: {out}");
        let mut processed: Vec<&str> =
            out["operations"].as_array().unwrap().iter().map(|o| o["client_id"].as_str().unwrap()).collect();
        processed.sort_unstable();
        assert_eq!(processed, ["250", "270", "410", "411"], "{kind}: Contoso Dental, Parity Clinic, both Litwares");
        for operation in out["operations"].as_array().unwrap() {
            assert_seed_shape(operation);
            assert!(operation["operation_id"].is_string());
        }
        let direct = deactivate_configs_event(&services, event("direct-invoke.json"), "lambda:test").await;
        assert_eq!(direct["statistics"]["configs_deactivated"], 0, "{kind}: the sweep already did client 250");
    }
}

fn event_of(function: &str, name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(function).join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn names_in(function: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(function);
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Every sample in `events/deactivate-contacts/` and `events/rollback/` goes through its
/// handler, on every PSA, with adapters built from settings as the Lambdas build them.
#[tokio::test]
async fn contact_and_rollback_events_are_handled_on_every_psa() {
    use offramp::entry::{deactivate_contacts_event, rollback_event};
    assert_eq!(
        names_in("deactivate-contacts"),
        [
            "api-gateway.json",
            "direct-invoke.json",
            "dry-run.json",
            "invalid-input.json",
            "missing-confirmation.json",
            "scheduled-sweep.json",
            "step-functions.json"
        ]
    );
    assert_eq!(names_in("rollback"), ["direct-invoke.json", "dry-run.json", "invalid-input.json"]);
    for kind in offramp_tests::psa::ALL {
        let sandbox = Sandbox::start(SandboxConfig {
            large_client_configs: 0,
            halo_rate_limit: None,
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let sim = offramp_tests::psa::sim(&sandbox, kind);
        let dir = tempfile::tempdir().unwrap();
        let mut source = offramp_tests::psa::source(&sandbox, kind, &dir.path().join("audit.sqlite"));
        source.set("OFFRAMP_NOTIFIER", "webhook");
        source.set("OFFRAMP_WEBHOOK_URL", sandbox.webhook_url());
        let services = offramp::app::build(&source).await.expect("services");
        let contacts =
            |name: &str| deactivate_contacts_event(&services, event_of("deactivate-contacts", name), "lambda:test");

        let invalid = contacts("invalid-input.json").await;
        assert_eq!(invalid["errors"][0]["code"], "InvalidInput", "{kind}: {invalid}");
        let unconfirmed = contacts("missing-confirmation.json").await;
        assert_eq!(unconfirmed["status"], "confirmation_required", "{kind}: {unconfirmed}");
        let dry = contacts("dry-run.json").await;
        assert_eq!((dry["success"].as_bool(), dry["dry_run"].as_bool()), (Some(true), Some(true)), "{kind}: {dry}");
        assert_eq!(dry["deactivation_summary"]["contacts_deactivated"], 4);
        let api = contacts("api-gateway.json").await;
        assert_eq!(api["statusCode"], 200, "{kind}: {api}");
        let body: Value = serde_json::from_str(api["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["deactivation_summary"]["company_id"], 270);
        assert_eq!(sim.contact_is_active(5002), Some(true), "{kind}: plans change nothing");

        let done = contacts("direct-invoke.json").await;
        assert_eq!(done["success"], Value::Bool(true), "{kind}: {done}");
        assert_eq!(done["deactivation_summary"]["contacts_deactivated"], 4);
        assert_eq!(done["ticket_id"], "9010");
        assert_eq!(sandbox.webhook_posts().len(), 1, "{kind}: notified through the configured webhook");
        let chained = contacts("step-functions.json").await;
        assert_eq!(chained["deactivation_summary"]["contacts_deactivated"], 2, "{kind}: {chained}");

        let operation_id = done["audit_trail"]["operation_id"].as_str().unwrap().to_string();
        let with_id = |name: &str| {
            let mut event = event_of("rollback", name);
            event["operation_id"] = Value::String(operation_id.clone());
            event
        };
        let preview = rollback_event(&services, with_id("dry-run.json"), "lambda:test").await;
        assert_eq!(preview["dry_run"], Value::Bool(true));
        assert_eq!(sim.contact_is_active(5002), Some(false), "{kind}: a dry run restores nothing");
        let undo = rollback_event(&services, with_id("direct-invoke.json"), "lambda:test").await;
        assert_eq!(undo["success"], Value::Bool(true), "{kind}: {undo}");
        assert_eq!(undo["rolled_back_operation_id"], operation_id.as_str());
        assert_eq!(sim.contact_is_active(5002), Some(true), "{kind}: restored through the Lambda");
        let bad = rollback_event(&services, event_of("rollback", "invalid-input.json"), "lambda:test").await;
        assert_eq!(bad["errors"][0]["code"], "InvalidInput", "{kind}: {bad}");
        // The nightly contact sweep, with each PSA's own meaning of offboarded: client 270's
        // contacts (restored just above) go again.
        let swept = contacts("scheduled-sweep.json").await;
        assert_eq!(swept["success"], Value::Bool(true), "{kind}: {swept}");
        assert_eq!(sim.contact_is_active(5002), Some(false), "{kind}: swept");
    }
}

/// A caller that retries a slow API call with the same idempotency key gets the first
/// run's answer, and nothing runs twice; a request for a client another run holds is a
/// 409 naming that run, with nothing changed.
#[tokio::test]
async fn an_api_retry_runs_once_and_a_busy_client_answers_409() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir).await;
    let first = deactivate_configs_event(&services, event("api-gateway-retry.json"), "lambda:test").await;
    assert_eq!(first["statusCode"], 200, "{first}");
    let retry = deactivate_configs_event(&services, event("api-gateway-retry.json"), "lambda:test").await;
    assert_eq!(retry["body"], first["body"], "the first run's report");
    assert_eq!(sandbox.stats().patches(), 9, "deactivated once");

    let holder = offramp::domain::LeaseRequest {
        target: offramp::operation::lease::target("connectwise", "250"),
        operation_id: "0190c3a0-0000-7000-8000-0000000000aa".into(),
        holder: "another-process".into(),
        ttl: chrono::Duration::minutes(2),
        break_existing: false,
    };
    services.audit.acquire_lease(&holder).await.unwrap();
    let mut busy = event("api-gateway-retry.json");
    busy["body"] = Value::String(busy["body"].as_str().unwrap().replace("psa-ticket-4711", "psa-ticket-4712"));
    let out = deactivate_configs_event(&services, busy, "lambda:test").await;
    assert_eq!(out["statusCode"], 409, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "OperationInProgress", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains(&holder.operation_id), "{body}");
    assert_eq!(sandbox.stats().patches(), 9, "nothing more changed");
}

/// The schedule's dry-run policy is a setting (`OFFRAMP_SWEEP_DRY_RUN`), never the event's:
/// the same real envelope plans only when the deployment says so.
#[tokio::test]
async fn the_schedule_takes_its_dry_run_policy_from_the_settings() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut source = source(&sandbox, &dir.path().join("audit.sqlite"));
    source.set("OFFRAMP_SWEEP_DRY_RUN", "true");
    let services = offramp::app::build(&source).await.expect("services");
    let out = deactivate_configs_event(&services, event("scheduled-sweep.json"), "lambda:test").await;
    assert_eq!(out["success"], true, "{out}");
    let operations = out["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 4, "{out}");
    assert!(operations.iter().all(|o| o["dry_run"] == true), "{out}");
    assert_eq!(sandbox.stats().patches(), 0, "a planned sweep changes nothing");
}

/// The delete-itglue-org function starts with IT Glue's settings alone when the PSA policy
/// is `off` (no `OFFRAMP_PSA`, no PSA URL or key), where the adapters of every workflow
/// cannot (they need a PSA), and deletes an organization on a direct invoke.
#[tokio::test]
async fn the_itglue_function_needs_no_psa_settings_when_its_policy_is_off() {
    use offramp::entry::FunctionServices;
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_itglue_deletion_delay(std::time::Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let source = offramp::config::ConfigSource::from_pairs([
        ("ITGLUE_URL", sandbox.itglue_url()),
        ("ITGLUE_API_KEY", offramp_sandbox::ITGLUE_API_KEY.to_string()),
        ("OFFRAMP_ITGLUE_PSA_POLICY", "off".to_string()),
        ("OFFRAMP_ITGLUE_POLL_SECONDS", "1".to_string()),
        ("OFFRAMP_AUDIT_DB", dir.path().join("audit.sqlite").display().to_string()),
        ("OFFRAMP_EXPORT_DIR", dir.path().join("exports").display().to_string()),
    ]);
    let err = offramp::app::build(&source).await.err().expect("the other functions need a PSA");
    assert!(err.to_string().contains("CONNECTWISE"), "{err}");
    let services = FunctionServices::build(Function::DeleteItGlueOrg, &source).await.expect("IT Glue alone");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/delete-itglue-org/direct-invoke.json");
    let direct_invoke: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let answer = services.handle(Function::DeleteItGlueOrg, direct_invoke, "lambda:test").await;
    assert_eq!(answer["deleted"], true, "{answer}");
    assert!(!sandbox.itglue().organization_exists(9002));
}
