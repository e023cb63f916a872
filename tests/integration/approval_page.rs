//! The approval page in a real browser: Debian's headless Chromium driven through
//! chromedriver's WebDriver HTTP API on loopback (plain JSON over the workspace's reqwest),
//! against the page served by the library's handler on a loopback server. The screenshot is
//! kept in target/test-artifacts/approval-page.png.
//!
//! Needs `chromium` and `chromium-driver` (scripts/setup.sh installs them); the driver is
//! `offramp_tests::chromium::Driver`.
//!
//! Run: `cargo nextest run --workspace -E 'test(/^approval_page::/)'`

use std::sync::Arc;
use std::time::Duration;

use offramp::adapters::approvals_memory::Delivered;
use offramp::approval::request_approval;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::approvals::{ApprovalFixture, serve};
use offramp_tests::chromium::Driver;
use serde_json::json;

#[tokio::test]
async fn an_approver_approves_in_chromium_and_a_second_visit_is_refused() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let fx = Arc::new(ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), &base).await);
    let _server = serve(listener, fx.clone());
    let issued = request_approval(fx.deps(), fx.request(Duration::from_secs(3600))).await.unwrap();
    let link = issued.links[0].1.clone();

    let driver = Driver::start().await;
    driver.open(&link).await;
    let page = driver.text("body").await;
    for visible in ["Contoso <Zürich> & Co", "requester@msp.example", "contract ended", "microsoft365", "connectwise"]
    {
        assert!(page.contains(visible), "{visible:?} on the page:\n{page}");
    }
    assert!(page.contains("configurations 17") || page.contains("configurations\t17"), "counts first:\n{page}");
    assert!(page.contains("<script>alert(1)</script>"), "markup shown as text:\n{page}");
    let name = driver.find("#name").await;
    driver.call("POST", &format!("/element/{name}/value"), Some(json!({"text": "Alice Approver"}))).await;
    let screenshot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/approval-page.png");
    driver.screenshot(&screenshot).await;
    let approve = driver.find("#approve").await;
    driver.call("POST", &format!("/element/{approve}/click"), None).await;
    let outcome = driver.text("#outcome").await;
    assert!(outcome.contains("was approved"), "{outcome}");

    let delivered = fx.callback.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let Delivered::Success { output, .. } = &delivered[0] else { panic!("{delivered:?}") };
    assert_eq!(output["approved_by"], "alice@msp.example (Alice Approver)");
    assert_eq!(output["plan_hashes"]["offboard_users"], "sha256:users-1111");

    driver.open(&link).await;
    let again = driver.text("body").await;
    assert!(again.contains("Already decided"), "{again}");
    assert_eq!(fx.callback.delivered().len(), 1, "a second visit changes nothing");
    driver.quit().await;
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a real screenshot");
}
