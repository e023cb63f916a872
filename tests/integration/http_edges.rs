//! Credentials go only where they belong (issue 13, point 2), proven against the sandbox:
//! a redirect is never followed (a second listener on another port hears nothing: no
//! credential header, no body), a base URL that is plain http off this machine is refused
//! when the adapters are built, and a next-page or zone URL on another host is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use offramp::adapters::autotask::AutotaskClient;
use offramp::adapters::itglue::{ItGlueClient, ItGlueSettings, default_http_settings};
use offramp::config::ConfigSource;
use offramp::domain::PsaKind;
use offramp::error::{DocError, ErrorCode, PsaError};
use offramp::ports::{DocPlatform, Psa};
use offramp_sandbox::{
    AT_INTEGRATION_CODE, AT_SECRET, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, HALO_CLIENT_SECRET, ITGLUE_API_KEY,
    Sandbox, SandboxConfig, leaks,
};
use offramp_tests::{connectwise, psa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A second loopback listener that counts every connection and every byte it receives,
/// and answers each with `200 {}` (so a client that followed a redirect would succeed).
struct Elsewhere {
    port: u16,
    connections: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

impl Elsewhere {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (connections, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (seen, read) = (connections.clone(), bytes.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let read = read.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    if let Ok(n) = stream.read(&mut buffer).await {
                        read.fetch_add(n, Ordering::SeqCst);
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { port, connections, bytes }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn assert_heard_nothing(&self, what: &str) {
        assert_eq!(self.connections.load(Ordering::SeqCst), 0, "{what}: the other listener was connected to");
        assert_eq!(self.bytes.load(Ordering::SeqCst), 0, "{what}: the other listener received bytes");
    }
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
}

/// Every form of every sandbox credential.
fn credential_forms() -> Vec<String> {
    let mut forms = leaks::basic_token(CW_COMPANY_ID, CW_PUBLIC_KEY, CW_PRIVATE_KEY);
    for secret in [CW_PRIVATE_KEY, AT_SECRET, AT_INTEGRATION_CODE, HALO_CLIENT_SECRET, ITGLUE_API_KEY] {
        forms.extend(leaks::forms(secret));
    }
    forms
}

fn assert_names_host_not_credentials(message: &str, host: &str, what: &str) {
    assert!(message.contains(host) && message.contains("redirect"), "{what}: the error must name {host}: {message}");
    for form in credential_forms() {
        assert!(!message.contains(&form), "{what}: the error carries a credential: {message}");
    }
}

#[tokio::test]
async fn a_redirect_is_an_error_naming_the_host_and_the_other_listener_hears_nothing() {
    let sandbox = sandbox().await;
    let elsewhere = Elsewhere::start().await;
    for status in [301, 302, 303, 307, 308] {
        sandbox.redirect_every_request(status, &format!("http://{}/collect?from=offramp", elsewhere.host()));
        for kind in psa::ALL {
            // HaloPSA's first request is the token POST (the client secret in its body);
            // ConnectWise's and Autotask's carry their credential headers.
            let client: Box<dyn Psa> = match kind {
                PsaKind::Autotask => {
                    let settings = offramp::adapters::autotask::AutotaskSettings {
                        url: Some(sandbox.autotask_url()),
                        ..psa::autotask_settings(&sandbox)
                    };
                    Box::new(AutotaskClient::new(settings, psa::http_settings(kind)).unwrap())
                }
                _ => psa::client(&sandbox, kind),
            };
            let what = format!("{kind:?} HTTP {status}");
            let error = client.company_by_id("250").await.expect_err("a redirect is an error");
            assert!(matches!(error, PsaError::InvalidResponse { .. }), "{what}: {error:?}");
            assert_eq!(error.code(), ErrorCode::PsaConnectionError, "{what}");
            assert_names_host_not_credentials(&error.to_string(), &elsewhere.host(), &what);
        }
        let itglue = ItGlueClient::new(
            ItGlueSettings { url: sandbox.itglue_url(), api_key: ITGLUE_API_KEY.into() },
            default_http_settings(),
        )
        .unwrap();
        let error = itglue.organization_by_id("9001").await.expect_err("a redirect is an error");
        assert!(matches!(error, DocError::InvalidResponse { .. }), "IT Glue: {error:?}");
        assert_names_host_not_credentials(&error.to_string(), &elsewhere.host(), "IT Glue");
    }
    elsewhere.assert_heard_nothing("redirects");
    sandbox.clear_redirect();
    let ok = connectwise::client(&sandbox).company_by_id("250").await.unwrap();
    assert!(ok.is_some(), "without the redirect the same request succeeds");
}

#[tokio::test]
async fn plain_http_off_this_machine_is_refused_when_the_adapters_are_built() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let cases: [(PsaKind, &str, &str); 6] = [
        (PsaKind::ConnectWise, "CONNECTWISE_URL", "http://na.myconnectwise.net/v4_6_release/apis/3.0"),
        (PsaKind::Autotask, "AUTOTASK_URL", "http://webservices5.autotask.net/atservicesrest/v1.0"),
        (PsaKind::Autotask, "AUTOTASK_ZONE_LOOKUP_URL", "http://webservices.autotask.net/atservicesrest/v1.0"),
        (PsaKind::Halo, "HALO_URL", "http://acme.halopsa.com"),
        (PsaKind::Halo, "HALO_AUTH_URL", "http://10.1.2.3/auth"),
        (PsaKind::ConnectWise, "ITGLUE_URL", "http://api.itglue.com"),
    ];
    for (kind, name, url) in cases {
        let mut source: ConfigSource = psa::source(&sandbox, kind, &dir.path().join("audit.sqlite"));
        source.set("ITGLUE_API_KEY", ITGLUE_API_KEY);
        source.set("ITGLUE_URL", sandbox.itglue_url());
        // The same settings on loopback http build: the refusal below is the URL's.
        assert!(offramp::app::build(&source).await.is_ok(), "{name}: the loopback settings must build");
        source.set(name, url);
        let error = offramp::app::build(&source).await.err().unwrap_or_else(|| panic!("{name}={url} was accepted"));
        assert_eq!(error.code(), ErrorCode::ConfigurationError, "{name}: {error}");
        let message = error.to_string();
        assert!(message.contains(name) && message.contains("https"), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_next_page_link_to_another_host_is_refused() {
    let sandbox = sandbox().await;
    let elsewhere = Elsewhere::start().await;
    let client = connectwise::client(&sandbox).with_page_size(2);
    let all = client.list_configurations(connectwise::DEMO_CLIENT, true).await.unwrap();
    assert!(all.len() > 2, "the client needs more than one page");
    sandbox.set_link_host(Some(&elsewhere.host()));
    let error = client.list_configurations(connectwise::DEMO_CLIENT, true).await.expect_err("another host");
    assert!(matches!(error, PsaError::InvalidResponse { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&elsewhere.host()) && message.contains("next-page"), "{message}");
    elsewhere.assert_heard_nothing("next page");
}

#[tokio::test]
async fn an_autotask_zone_off_the_vendor_domain_is_refused() {
    let sandbox = sandbox().await;
    let client = AutotaskClient::new(psa::autotask_settings(&sandbox), psa::http_settings(PsaKind::Autotask)).unwrap();
    sandbox.set_link_host(Some("autotask.net.evil.example"));
    let error = client.company_by_id("250").await.expect_err("a zone on another domain");
    assert!(matches!(error, PsaError::InvalidResponse { .. }), "{error:?}");
    assert!(error.to_string().contains("autotask.net.evil.example"), "{error}");
    // The zone on this machine (the sandbox's own) is accepted.
    sandbox.set_link_host(None);
    let fresh = AutotaskClient::new(psa::autotask_settings(&sandbox), psa::http_settings(PsaKind::Autotask)).unwrap();
    assert!(fresh.company_by_id("250").await.unwrap().is_some());
}
