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
        ["api-gateway.json", "direct-invoke.json", "dry-run.json", "invalid-input.json", "scheduled-sweep.json"]
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
