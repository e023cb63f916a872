//! `offramp webhooks register` against the sandbox: ConnectWise, one callback after two runs
//! with the token in its URL; Autotask, one company webhook after two runs with its field,
//! excluded resource and secret key; HaloPSA, the fields to set by hand and "nothing done".
//! Every effect is counted in the simulator.

use crate::common;

use offramp_sandbox::{Sandbox, SandboxConfig};

const TOKEN: &str = "cw-url-token-for-the-cli-test";

#[tokio::test]
async fn registering_twice_leaves_one_connectwise_callback() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let url = "https://hooks.example.com/webhooks/connectwise";
    for created in [true, false] {
        let mut command = common::offramp_for(&sandbox, "connectwise", &db);
        command.env("CONNECTWISE_WEBHOOK_URL_TOKEN", TOKEN);
        command.args(["webhooks", "register", "--psa", "connectwise", "--url", url, "--json"]);
        let out = common::run(command).await;
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(common::json(&out)["created"], created);
    }
    let callbacks = sandbox.connectwise().callbacks();
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0]["url"], format!("{url}/{TOKEN}"));
    assert_eq!((callbacks[0]["type"].as_str(), callbacks[0]["level"].as_str()), (Some("company"), Some("owner")));
    assert_eq!(sandbox.stats().count("POST", "/system/callbacks"), 1);

    // Without the token there is nothing to register: a configuration error (exit 3).
    let mut command = common::offramp_for(&sandbox, "connectwise", &db);
    command.args(["webhooks", "register", "--psa", "connectwise", "--url", url]);
    let out = common::run(command).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sandbox.connectwise().callbacks().len(), 1);
}

const AT_SECRET_KEY: &str = "autotask-webhook-secret-for-the-cli-test";
const AT_URL: &str = "https://hooks.example.com/webhooks/autotask";
/// The isActive field's id and the API user's resource id the operator passes.
const ACTIVE_FIELD_ID: &str = "12";
const API_RESOURCE_ID: &str = "29682885";

fn autotask_register(sandbox: &Sandbox, db: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut command = common::offramp_for(sandbox, "autotask", db);
    command.env("AUTOTASK_WEBHOOK_SECRET", AT_SECRET_KEY);
    command.args(["webhooks", "register", "--psa", "autotask", "--url", AT_URL]);
    command.args(extra);
    command
}

#[tokio::test]
async fn registering_twice_leaves_one_autotask_company_webhook() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let flags = ["--active-field-id", ACTIVE_FIELD_ID, "--exclude-resource-id", API_RESOURCE_ID, "--json"];
    for created in [true, false] {
        let out = common::run(autotask_register(&sandbox, &db, &flags)).await;
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let report = common::json(&out);
        assert_eq!(report["created"], created, "{report}");
        assert_eq!((report["field_added"] == created, report["ready"].as_bool()), (true, Some(true)), "{report}");
    }
    let webhooks = sandbox.autotask().company_webhooks();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    let webhook = &webhooks[0];
    assert_eq!(webhook["webhookUrl"], AT_URL);
    assert_eq!(webhook["secretKey"], AT_SECRET_KEY, "deliveries are verified with this key");
    assert_eq!(webhook["isActive"], true);
    assert_eq!(webhook["isSubscribedToUpdateEvents"], true);
    assert_eq!(webhook["fields"].as_array().unwrap().len(), 1, "{webhook}");
    assert_eq!(webhook["fields"][0]["fieldID"], 12);
    assert_eq!(webhook["excludedResources"][0]["resourceID"], 29682885, "{webhook}");
    let posts = |route: &str| sandbox.stats().count("POST", route);
    assert_eq!(posts("/autotask/CompanyWebhooks"), 1);
    assert_eq!(posts("/autotask/CompanyWebhooks/{id}/Fields"), 1);
    assert_eq!(posts("/autotask/CompanyWebhooks/{id}/ExcludedResources"), 1);
}

/// A webhook left without its field (a first run stopped after creating it) is completed
/// by the next run, not duplicated.
#[tokio::test]
async fn a_half_registered_autotask_webhook_is_completed_not_duplicated() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    // Autotask refuses the field: the webhook exists, without a field, not ready.
    sandbox.fail_route("POST", "/Fields", 500);
    let out = common::run(autotask_register(&sandbox, &db, &["--active-field-id", ACTIVE_FIELD_ID])).await;
    assert_ne!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let webhooks = sandbox.autotask().company_webhooks();
    assert_eq!((webhooks.len(), webhooks[0]["isReady"].as_bool()), (1, Some(false)), "{webhooks:?}");

    sandbox.clear_route_faults();
    let out = common::run(autotask_register(&sandbox, &db, &["--active-field-id", ACTIVE_FIELD_ID, "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = common::json(&out);
    assert_eq!((report["created"].as_bool(), report["field_added"].as_bool()), (Some(false), Some(true)), "{report}");
    assert_eq!(report["ready"], true, "{report}");
    let webhooks = sandbox.autotask().company_webhooks();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    assert_eq!(webhooks[0]["fields"].as_array().unwrap().len(), 1, "{webhooks:?}");
    assert_eq!(sandbox.stats().count("POST", "/autotask/CompanyWebhooks"), 1);
}

/// What Offramp could not verify or Autotask would refuse is refused before anything is sent.
#[tokio::test]
async fn autotask_registration_refuses_what_it_cannot_do_and_sends_nothing() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    // No field id: invalid input (exit 3).
    let out = common::run(autotask_register(&sandbox, &db, &[])).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--active-field-id"));
    // A secret key longer than Autotask takes: configuration error (exit 3).
    let mut long = autotask_register(&sandbox, &db, &["--active-field-id", ACTIVE_FIELD_ID]);
    long.env("AUTOTASK_WEBHOOK_SECRET", "k".repeat(65));
    let out = common::run(long).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64"), "{}", String::from_utf8_lossy(&out.stderr));
    // No secret at all.
    let mut none = autotask_register(&sandbox, &db, &["--active-field-id", ACTIVE_FIELD_ID]);
    none.env_remove("AUTOTASK_WEBHOOK_SECRET");
    let out = common::run(none).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // Autotask refuses the API user's credentials: permission denied (exit 6), nothing registered.
    let mut denied = autotask_register(&sandbox, &db, &["--active-field-id", ACTIVE_FIELD_ID]);
    denied.env("AUTOTASK_SECRET", "not-the-api-users-secret");
    let out = common::run(denied).await;
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sandbox.autotask().company_webhooks().len(), 0);
    assert_eq!(sandbox.stats().count("POST", "/autotask/CompanyWebhooks"), 0);
}

/// HaloPSA: the fields to configure by hand, and the exit code of "nothing done" — never 0.
#[tokio::test]
async fn halo_registration_prints_the_fields_and_says_nothing_was_done() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let url = "https://hooks.example.com/webhooks/halo";
    let mut command = common::offramp_for(&sandbox, "halo", &db);
    command.args(["webhooks", "register", "--psa", "halo", "--url", url, "--json"]);
    let out = common::run(command).await;
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let report = common::json(&out);
    assert_eq!(report["registered"], false, "{report}");
    assert_eq!(report["configure_by_hand"]["url"], url);
    assert_eq!(report["configure_by_hand"]["content_type"], "application/json");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was registered"));
    assert_eq!(sandbox.stats().total(), 0, "HaloPSA was not called");
}
