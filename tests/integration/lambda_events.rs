//! Every sample in `events/deactivate-configs/` goes through the Lambda handler logic,
//! with adapters built exactly as the Lambda builds them (from settings).

use std::path::PathBuf;

use offramp::entry::deactivate_configs_event;
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

#[tokio::test]
async fn every_sample_event_is_handled() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/deactivate-configs");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "api-gateway-retry.json",
            "api-gateway.json",
            "direct-invoke.json",
            "dry-run.json",
            "invalid-input.json",
            "scheduled-sweep.json"
        ]
    );
}

#[tokio::test]
async fn direct_invoke_deactivates_the_demo_client() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir).await;
    let out = deactivate_configs_event(&services, event("direct-invoke.json"), "lambda:test").await;
    assert_seed_shape(&out);
    assert_eq!(out["success"], Value::Bool(true), "{out}");
    assert_eq!(out["statistics"]["configs_deactivated"], 9);
    assert_eq!(sandbox.stats().patches(), 9);
}

#[tokio::test]
async fn dry_run_event_changes_nothing() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir).await;
    let out = deactivate_configs_event(&services, event("dry-run.json"), "lambda:test").await;
    assert_seed_shape(&out);
    assert_eq!(out["dry_run"], Value::Bool(true));
    assert_eq!(out["statistics"]["configs_found"], 12, "include_archived lists the Disposed one");
    assert_eq!(sandbox.stats().patches(), 0);
}

#[tokio::test]
async fn api_gateway_event_answers_a_proxy_response() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir).await;
    let out = deactivate_configs_event(&services, event("api-gateway.json"), "lambda:test").await;
    assert_eq!(out["statusCode"], 200, "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_seed_shape(&body);
    assert_eq!(body["dry_run"], Value::Bool(true));
}

#[tokio::test]
async fn invalid_input_event_is_a_structured_error() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir).await;
    let out = deactivate_configs_event(&services, event("invalid-input.json"), "lambda:test").await;
    assert_seed_shape(&out);
    assert_eq!(out["success"], Value::Bool(false));
    assert_eq!(out["errors"][0]["code"], "InvalidInput");
    assert!(out["errors"][0]["message"].as_str().unwrap().contains("dryrun"), "{out}");
    assert_eq!(sandbox.stats().total(), 0);
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
