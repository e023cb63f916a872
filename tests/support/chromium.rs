//! Debian's headless Chromium driven through chromedriver's WebDriver HTTP API on loopback
//! (plain JSON over the workspace's reqwest): the approval page and the evidence report are
//! checked in a real browser this way.
//!
//! Needs `chromium` and `chromium-driver` (scripts/setup.sh installs them). Chromium's flags
//! are the ones this sandboxed, offline machine needs: no sandbox (root), no GPU, no QUIC,
//! no background networking, component updates or sync (their connections are refused
//! here), a fresh profile.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver as a child process, killed when the test ends.
pub struct Driver {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub async fn start() -> Self {
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
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"}}}});
        let mut driver = Self { child, url, http, session: String::new(), _profile: profile };
        let session = driver.call("POST", "/session", Some(caps)).await;
        driver.session = session["sessionId"].as_str().expect("a session").to_string();
        driver
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub async fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    pub async fn find(&self, css: &str) -> String {
        let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call("GET", &format!("/element/{element}/text"), None).await.as_str().unwrap_or_default().to_string()
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let png = self.call("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The browser console's entries since the last call (level, message): chromedriver's
    /// log endpoint, enabled by the session's `goog:loggingPrefs`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self.call("POST", "/se/log", Some(json!({"type": "browser"}))).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (e["level"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// The page printed to PDF (W3C Print: A4, backgrounds), as bytes.
    pub async fn print_pdf(&self) -> Vec<u8> {
        use base64::Engine;
        let body = json!({"page": {"width": 21.0, "height": 29.7}, "background": true});
        let pdf = self.call("POST", "/print", Some(body)).await;
        base64::engine::general_purpose::STANDARD.decode(pdf.as_str().unwrap_or_default()).unwrap_or_default()
    }

    pub async fn quit(mut self) {
        self.call("DELETE", "", None).await;
        let _ = self.child.kill().await;
    }
}
