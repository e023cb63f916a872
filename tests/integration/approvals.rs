//! Approvals without a browser (docs/architecture.md#approvals): forged, expired and reused
//! tokens, concurrent clicks on SQLite and DynamoDB (moto), the same-person rule, and no
//! token in a log, a ticket note, an e-mail but its own, or the audit trail. Effects are
//! counted where they land: the sandbox's mailbox and ticket notes, the callback's
//! deliveries, the store's decision.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^approvals::/)'`

use std::sync::{Arc, Mutex};
use std::time::Duration;

use offramp::adapters::approvals_memory::Delivered;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::approval::page::handle;
use offramp::approval::{ApprovalError, DecisionRequest, decide, request_approval, tokens};
use offramp::domain::{ApprovalVerdict, GLOBAL_SCOPE, OperationEventKind, PsaKind, SettingRecord};
use offramp::error::ErrorCode;
use offramp::logging::{LogFormat, capture};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::approvals::{APPROVERS, ApprovalFixture, CLIENT_ID, REQUESTER, Stores, token_of};

const BASE: &str = "https://approvals.msp.example";
const DAY: Duration = Duration::from_secs(86_400);

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn form(name: &str, decision: &str) -> Vec<u8> {
    format!("name={}&decision={decision}", url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>())
        .into_bytes()
}

fn path(link: &str) -> String {
    format!("/approvals/{}", token_of(link))
}

fn events(detail: &offramp::domain::OperationDetail, kind: OperationEventKind) -> Vec<serde_json::Value> {
    detail.events.iter().filter(|e| e.kind == kind).map(|e| e.detail.clone()).collect()
}

#[tokio::test]
async fn a_link_decides_once_and_every_other_click_is_refused_and_audited() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let fx = ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), BASE).await;
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.expect("approval requested");
    assert_eq!(issued.links.len(), 2);

    // Forged: well formed but never issued, and not even a token's shape.
    let forged = tokens::new_token().unwrap();
    for path in [format!("/approvals/{}", forged.expose()), "/approvals/abc".into(), "/elsewhere".into()] {
        let page = handle(fx.deps(), "POST", &path, &form("Mallory", "approve")).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    // A page without a name or a choice decides nothing.
    let (alice, bob) = (&issued.links[0].1, &issued.links[1].1);
    assert_eq!(handle(fx.deps(), "POST", &path(alice), b"decision=approve").await.status, 400);
    assert_eq!(handle(fx.deps(), "POST", &path(alice), b"name=Alice").await.status, 400);
    assert!(fx.callback.delivered().is_empty());

    let page = handle(fx.deps(), "GET", &path(alice), b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Contoso &lt;Zürich&gt; &amp; Co"), "escaped client name");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.body.contains("<script>"));

    let page = handle(fx.deps(), "POST", &path(alice), &form("Alice Approver", "approve")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("approved"), "{}", page.body);
    // Reused, and the other approver's link after the decision: refused, nothing changes.
    for link in [alice, bob] {
        let page = handle(fx.deps(), "POST", &path(link), &form("Someone", "reject")).await;
        assert_eq!(page.status, ErrorCode::ApprovalAlreadyDecided.http_status(), "{}", page.body);
        assert!(page.body.contains("Already decided"));
    }
    let page = handle(fx.deps(), "GET", &path(bob), b"").await;
    assert_eq!(page.status, 409);

    let delivered = fx.callback.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let Delivered::Success { output, .. } = &delivered[0] else { panic!("{delivered:?}") };
    assert_eq!(output["approved"], true);
    assert_eq!(output["approved_by"], "alice@msp.example (Alice Approver)");
    assert_eq!(output["plan_hashes"]["deactivate_configs"], "sha256:configs-3333");
    assert_eq!(output["plan_hashes"].as_object().unwrap().len(), 3);

    let detail = fx.store.operation(&fx.parent_operation_id).await.unwrap().unwrap();
    assert_eq!(events(&detail, OperationEventKind::ApprovalRequested).len(), 1);
    let decided = events(&detail, OperationEventKind::ApprovalDecided);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["verdict"], "approved");
    let refused = events(&detail, OperationEventKind::ApprovalAttemptRefused);
    assert_eq!(refused.len(), 2, "two reused clicks recorded: {refused:?}");
    assert!(refused.iter().all(|r| r["code"] == "ApprovalAlreadyDecided"));
}

#[tokio::test]
async fn an_expired_link_fails_the_task_once_and_decides_nothing() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let fx = ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), BASE).await;
    let issued = request_approval(fx.deps(), fx.request(Duration::from_millis(200))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (recipient, link) in &issued.links {
        assert_eq!(handle(fx.deps(), "GET", &path(link), b"").await.status, 410, "{recipient}");
        let page = handle(fx.deps(), "POST", &path(link), &form("Alice", "approve")).await;
        assert_eq!(page.status, 410, "{}", page.body);
        assert!(page.body.contains("Approval expired"));
    }
    let delivered = fx.callback.delivered();
    assert_eq!(delivered.len(), 1, "the expiry is delivered once: {delivered:?}");
    assert!(matches!(&delivered[0], Delivered::Failure { error, .. } if error == "ApprovalExpired"));
    let record = fx.store.approval(&issued.approval_id).await.unwrap().unwrap();
    assert_eq!(record.decision.unwrap().verdict, ApprovalVerdict::Expired);
}

#[tokio::test]
async fn a_rejection_fails_the_task_with_approval_rejected() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let fx = ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), BASE).await;
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.unwrap();
    let page = handle(fx.deps(), "POST", &path(&issued.links[1].1), &form("Bob", "reject")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("rejected"));
    let delivered = fx.callback.delivered();
    assert!(
        matches!(&delivered[..], [Delivered::Failure { error, .. }] if error == "ApprovalRejected"),
        "{delivered:?}"
    );
}

/// Many clicks at once, with both approvers' tokens, through two store handles on one file
/// (two processes): exactly one decision, one delivery.
#[tokio::test]
async fn concurrent_clicks_make_one_decision_on_sqlite() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite");
    let fx = Arc::new(ApprovalFixture::sqlite(&sb, &path, BASE).await);
    let other: Arc<dyn Stores> = Arc::new(SqliteAuditStore::open(&path).unwrap());
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.unwrap();
    race(&fx, Some(other), &issued.links).await;
}

#[tokio::test]
async fn concurrent_clicks_make_one_decision_on_dynamodb() {
    let sb = sandbox().await;
    let fx = Arc::new(ApprovalFixture::dynamodb(&sb, BASE).await);
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.unwrap();
    race(&fx, None, &issued.links).await;
    // The store holds the hashes only: the item keyed by a token's hash, never the token.
    let token = token_of(&issued.links[0].1);
    assert!(fx.store.approval_token(&tokens::token_hash(token)).await.unwrap().is_some());
    assert!(fx.store.approval_token(token).await.unwrap().is_none());
}

async fn race(fx: &Arc<ApprovalFixture>, other: Option<Arc<dyn Stores>>, links: &[(String, String)]) {
    let mut clicks = Vec::new();
    for i in 0..16 {
        let fx = fx.clone();
        let other = other.clone();
        let token = token_of(&links[i % links.len()].1).to_string();
        clicks.push(tokio::spawn(async move {
            let mut deps = fx.deps();
            if let (Some(store), true) = (other.as_deref(), i % 2 == 1) {
                deps.store = store;
                deps.audit = store;
            }
            let verdict = if i % 3 == 0 { ApprovalVerdict::Rejected } else { ApprovalVerdict::Approved };
            decide(deps, &token, &DecisionRequest { verdict, typed_name: format!("clicker {i}") }).await
        }));
    }
    let mut decided = 0;
    for click in clicks {
        match click.await.unwrap() {
            Ok(_) => decided += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::ApprovalAlreadyDecided, "{e}"),
        }
    }
    assert_eq!(decided, 1, "exactly one click decides");
    assert_eq!(fx.callback.delivered().len(), 1, "{:?}", fx.callback.delivered());
}

#[tokio::test]
async fn the_requester_cannot_approve_when_the_client_requires_another_person() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let fx = ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), BASE).await;
    let set = |scope: &str, key: &str, value: &str| SettingRecord {
        psa: "connectwise".into(),
        scope: scope.into(),
        key: key.into(),
        value: Some(value.into()),
        set_by: "test".into(),
        set_at: offramp::domain::now(),
    };
    fx.store.put_setting(&set(CLIENT_ID, "approval_approver_must_differ", "true")).await.unwrap();
    // The client's approvers include the requester.
    fx.store.put_setting(&set(CLIENT_ID, "approvers", &format!("{REQUESTER},{}", APPROVERS[1]))).await.unwrap();
    fx.store.put_setting(&set(GLOBAL_SCOPE, "approvers", "nobody@msp.example")).await.unwrap();
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.unwrap();
    let link = |who: &str| issued.links.iter().find(|(r, _)| r == who).map(|(_, l)| path(l)).expect(who);

    let own = handle(fx.deps(), "POST", &link(REQUESTER), &form("Requester", "approve")).await;
    assert_eq!(own.status, 403, "{}", own.body);
    // Bob's link, typing the requester's address: still the requester.
    let typed = handle(fx.deps(), "POST", &link(APPROVERS[1]), &form(REQUESTER, "approve")).await;
    assert_eq!(typed.status, 403);
    assert!(fx.callback.delivered().is_empty(), "nothing decided");
    assert!(fx.store.approval(&issued.approval_id).await.unwrap().unwrap().decision.is_none());

    let other = handle(fx.deps(), "POST", &link(APPROVERS[1]), &form("Bob", "approve")).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let detail = fx.store.operation(&fx.parent_operation_id).await.unwrap().unwrap();
    let refused = events(&detail, OperationEventKind::ApprovalAttemptRefused);
    assert_eq!(refused.iter().filter(|r| r["code"] == "ApproverIsRequester").count(), 2, "{refused:?}");
}

#[tokio::test]
async fn without_approvers_nothing_is_stored_or_sent() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let mut fx = ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), BASE).await;
    fx.config.default_approvers.clear();
    let err = request_approval(fx.deps(), fx.request(DAY)).await.expect_err("no approvers");
    assert!(matches!(err, ApprovalError::InvalidInput { .. }), "{err}");
    assert!(sb.sent_mail().is_empty());
    let detail = fx.store.operation(&fx.parent_operation_id).await.unwrap().unwrap();
    assert!(events(&detail, OperationEventKind::ApprovalRequested).is_empty());
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Each approver's e-mail carries their own link and no other; the ticket note, the log
/// (at trace), the audit trail and the issued approval's Debug carry no token at all.
#[tokio::test]
async fn tokens_appear_only_in_their_own_email() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let fx = ApprovalFixture::sqlite(&sb, &db, BASE).await;
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let _guard = tracing::subscriber::set_default(capture("trace", LogFormat::Json, move || writer.clone()));
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.unwrap();
    let tokens: Vec<String> = issued.links.iter().map(|(_, l)| token_of(l).to_string()).collect();
    // Clicks that fail and one that succeeds, so every path has logged what it logs.
    handle(fx.deps(), "GET", &format!("{}x", path(&issued.links[0].1)), b"").await;
    handle(fx.deps(), "POST", &path(&issued.links[0].1), &form("Alice", "approve")).await;
    handle(fx.deps(), "POST", &path(&issued.links[1].1), &form("Bob", "approve")).await;

    let mail = sb.sent_mail();
    assert_eq!(mail.len(), 2, "one e-mail per approver");
    for (recipient, link) in &issued.links {
        let message = mail.iter().find(|m| m.to_string().contains(recipient.as_str())).expect(recipient);
        let text = message.to_string();
        assert!(text.contains(link.as_str()), "{recipient} gets their link");
        for token in &tokens {
            assert_eq!(text.contains(token.as_str()), link.ends_with(token.as_str()), "{recipient}: only their token");
        }
    }
    let ticket = offramp_tests::psa::sim(&sb, PsaKind::ConnectWise).ticket(fx.ticket_id.parse().unwrap()).unwrap();
    let note = ticket.notes.iter().find(|n| n.contains("approval requested") || n.contains("asked for approval"));
    assert!(note.is_some(), "the ticket is told: {:?}", ticket.notes);
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let detail =
        serde_json::to_string(&fx.store.operation(&fx.parent_operation_id).await.unwrap().unwrap().events).unwrap();
    // The database file and its WAL, whatever has been checkpointed.
    let audit_file: Vec<u8> =
        std::fs::read_dir(dir.path()).unwrap().flat_map(|f| std::fs::read(f.unwrap().path()).unwrap()).collect();
    for token in &tokens {
        assert!(!ticket.notes.iter().any(|n| n.contains(token.as_str())), "no token in the ticket note");
        assert!(!log.contains(token.as_str()), "no token in the log");
        assert!(!detail.contains(token.as_str()), "no token in the audit trail");
        assert!(!format!("{issued:?}").contains(token.as_str()), "no token in Debug");
        let file = String::from_utf8_lossy(&audit_file);
        assert!(!file.contains(token.as_str()), "no token in the SQLite file");
    }
    assert!(log.contains("approval link refused"), "the log did record the refusals");
}

/// An API Gateway HTTP API (payload 2.0) event, as the `approval` function receives it.
fn http_api_event(method: &str, path: &str, body: Option<&[u8]>) -> serde_json::Value {
    use base64::Engine;
    serde_json::json!({
        "version": "2.0", "routeKey": format!("{method} /approvals/{{token}}"), "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "approvals.msp.example",
            "domainPrefix": "approvals", "requestId": "r1", "routeKey": format!("{method} /approvals/{{token}}"),
            "stage": "$default", "time": "06/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"}},
        "body": body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        "isBase64Encoded": body.is_some(),
    })
}

/// The Lambda's path: the HTTP API event in, a proxy answer with the page's headers out.
#[tokio::test]
async fn the_lambda_answers_http_api_events_with_the_page() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let fx = ApprovalFixture::sqlite(&sb, &dir.path().join("audit.sqlite"), BASE).await;
    let issued = request_approval(fx.deps(), fx.request(DAY)).await.unwrap();
    let link = path(&issued.links[0].1);
    let shown = offramp::approval::page::handle_http_api(fx.deps(), http_api_event("GET", &link, None)).await;
    assert_eq!(shown["statusCode"], 200, "{shown}");
    assert_eq!(shown["headers"]["cache-control"], "no-store");
    assert_eq!(shown["headers"]["referrer-policy"], "no-referrer");
    assert!(shown["headers"]["content-security-policy"].as_str().unwrap().starts_with("default-src 'none'"));
    let event = http_api_event("POST", &link, Some(&form("Alice", "approve")));
    let decided = offramp::approval::page::handle_http_api(fx.deps(), event).await;
    assert_eq!(decided["statusCode"], 200, "{decided}");
    let forged = format!("/approvals/{}", tokens::new_token().unwrap().expose());
    let refused = offramp::approval::page::handle_http_api(fx.deps(), http_api_event("GET", &forged, None)).await;
    assert_eq!(refused["statusCode"], 404);
    let garbage = offramp::approval::page::handle_http_api(fx.deps(), serde_json::json!({"nope": 1})).await;
    assert_eq!(garbage["statusCode"], 400);
    assert_eq!(fx.callback.delivered().len(), 1);
}
