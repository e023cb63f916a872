//! Faults after a write and shortened vendor windows, as the simulators apply them
//! (`Sandbox::fault_after_write`, `fault_after_create`, `set_rate_window`,
//! `record_foreign_requests`).

use std::time::Duration;

use base64::Engine;
use offramp_sandbox::{AfterWrite, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, Sandbox, SandboxConfig};
use serde_json::json;

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
}

fn patch(sb: &Sandbox, id: i64) -> reqwest::RequestBuilder {
    let token = format!("{CW_COMPANY_ID}+{CW_PUBLIC_KEY}:{CW_PRIVATE_KEY}");
    reqwest::Client::new()
        .patch(format!("{}/company/configurations/{id}", sb.connectwise_url()))
        .header("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(token)))
        .header("clientId", CW_CLIENT_ID)
        .json(&json!([{"op": "replace", "path": "status", "value": {"id": 2}}]))
}

/// The write is applied, then its answer is lost; only the named id, only as often as asked.
#[tokio::test]
async fn a_fault_after_a_write_applies_it_then_loses_the_answer_for_that_id_only() {
    let sb = sandbox().await;
    let cw = sb.psa("connectwise");
    sb.fault_after_write("patch", "/company/configurations/", Some(27001), AfterWrite::Drop, 1);
    sb.fault_after_write("PATCH", "/company/configurations/", Some(27002), AfterWrite::Status(504), 1);

    let broken = match patch(&sb, 27001).send().await {
        Ok(response) => response.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(broken, "the connection broke mid-answer");
    assert_eq!((cw.update_count(27001), cw.configuration_is_active(27001)), (1, Some(false)), "applied");
    let gateway = patch(&sb, 27002).send().await.unwrap();
    assert_eq!(gateway.status(), 504);
    assert_eq!((cw.update_count(27002), cw.configuration_is_active(27002)), (1, Some(false)), "applied");
    assert_eq!(patch(&sb, 27003).send().await.unwrap().status(), 200, "another id is not struck");
    assert_eq!(patch(&sb, 27001).send().await.unwrap().status(), 200, "used up after one strike");
    assert_eq!(sb.after_write_faults_struck(), 2);
}

/// A write the route refuses keeps the fault for the next one: only applied writes are struck.
#[tokio::test]
async fn a_refused_write_does_not_use_up_the_fault() {
    let sb = sandbox().await;
    let cw = sb.psa("connectwise");
    cw.fail_configuration_update(27001, "in use");
    sb.fault_after_write("PATCH", "/company/configurations/", Some(27001), AfterWrite::Status(504), 1);
    assert_eq!(patch(&sb, 27001).send().await.unwrap().status(), 400);
    assert_eq!(sb.after_write_faults_struck(), 0);
    cw.clear_configuration_failures();
    assert_eq!(patch(&sb, 27001).send().await.unwrap().status(), 504);
    assert_eq!(sb.after_write_faults_struck(), 1);
}

/// A shortened HaloPSA window, partly used by another integration: full at once, free
/// again one window later.
#[tokio::test]
async fn a_shortened_window_fills_with_foreign_requests_and_empties_after_it() {
    let sb = sandbox().await;
    sb.set_halo_rate_limit(Some(3));
    sb.halo().set_rate_window(Duration::from_millis(300));
    sb.halo().record_foreign_requests(3);
    let url = format!("{}/api/authinfo", sb.halo_url());
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 429, "full: no Retry-After");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    assert_eq!(sb.halo().requests_in_window(), 1);
}
