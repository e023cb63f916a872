//! The approval page in a real browser: Debian's headless Chromium driven through
//! chromedriver's WebDriver HTTP API on loopback (plain JSON over the workspace's reqwest),
//! against the page served by the library's handler on a loopback server. The screenshot is
//! kept in target/test-artifacts/approval-page.png.
//!
//! Needs `chromium` and `chromium-driver` (scripts/setup.sh installs them). Chromium's flags
//! are the ones this sandboxed, offline machine needs: no sandbox (root), no GPU, no QUIC,
//! no background networking, component updates or sync (their connections are refused
//! here), a fresh profile.
//!
//! Run: `cargo nextest run --workspace -E 'test(/^approval_page::/)'`

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use offramp::adapters::approvals_memory::Delivered;
use offramp::approval::request_approval;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::approvals::{ApprovalFixture, serve};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver as a child process, killed when the test ends.
struct Driver {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver; scripts/setup.sh does)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        for _ in 0..100 {
            if http.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,1600",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let mut driver = Self { child, url, http, session: String::new(), _profile: profile };
        let session = driver.call("POST", "/session", Some(caps)).await;
        driver.session = session["sessionId"].as_str().expect("a session").to_string();
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.url)
        } else {
            format!("{}/session/{}{path}", self.url, self.session)
        };
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or(json!({}))),
        };
        let answer: Value = request.send().await.expect("WebDriver").json().await.expect("WebDriver JSON");
        assert!(answer["value"].get("error").is_none(), "WebDriver {method} {path}: {answer}");
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call("GET", &format!("/element/{element}/text"), None).await.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let png = self.call("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    async fn quit(mut self) {
        self.call("DELETE", "", None).await;
        let _ = self.child.kill().await;
    }
}

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
