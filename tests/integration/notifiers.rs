//! Notifier adapters (Graph sendMail, incoming webhook) against the sandbox (issue 4).

use std::sync::atomic::Ordering;

use offramp::adapters::notify_graph::{GraphMailNotifier, GraphMailSettings};
use offramp::adapters::notify_webhook::{WebhookNotifier, WebhookSettings};
use offramp::domain::Notification;
use offramp::error::NotifyError;
use offramp::ports::Notifier;
use offramp_sandbox::{GRAPH_BLOCKED_SENDER, GRAPH_CLIENT_SECRET, GRAPH_SENDER, HOOKS_PREFIX, Sandbox, SandboxConfig};
use offramp_tests::connectwise::http_settings;
use serde_json::json;

const TOKEN_ROUTE: (&str, &str) = ("POST", "/entra/oauth2/v2.0/token");
const SEND_ROUTE: (&str, &str) = ("POST", "/graph/v1.0/users/sendMail");

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn graph_settings(sb: &Sandbox) -> GraphMailSettings {
    offramp_tests::offboarding::mail_settings(sb)
}

fn mailer(settings: GraphMailSettings) -> GraphMailNotifier {
    GraphMailNotifier::new(settings, http_settings()).expect("Graph mail notifier")
}

fn webhook(url: String) -> WebhookNotifier {
    WebhookNotifier::new(WebhookSettings { url: url.into() }, http_settings()).expect("webhook notifier")
}

fn notification(to: &[&str], subject: &str) -> Notification {
    Notification {
        to: to.iter().map(|s| s.to_string()).collect(),
        subject: subject.to_string(),
        text: "Contacts deactivated at Contoso Dental: 5002 Bob Wilson.\nTicket 9001 reassigned.".to_string(),
    }
}

fn count(sb: &Sandbox, (method, route): (&str, &str)) -> u64 {
    sb.stats().count(method, route)
}

#[tokio::test]
async fn mail_is_delivered_with_subject_body_and_recipients_on_one_token() {
    let sb = sandbox().await;
    let mailer = mailer(graph_settings(&sb));
    assert_eq!(mailer.channel(), "graph-mail");

    let first = notification(
        &["manager@contoso.example", " Owner@Contoso.example ", "MANAGER@contoso.example"],
        "Offboarding done: Contoso Dental",
    );
    mailer.send(&first).await.expect("first mail");
    let second = notification(&["noc@msp.example"], "Second");
    mailer.send(&second).await.expect("second mail");

    let sent = sb.sent_mail();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0],
        json!({
            "sender": GRAPH_SENDER,
            "message": {
                "subject": "Offboarding done: Contoso Dental",
                "body": {"contentType": "Text", "content": first.text},
                "toRecipients": [
                    {"emailAddress": {"address": "manager@contoso.example"}},
                    {"emailAddress": {"address": "Owner@Contoso.example"}},
                ],
            },
            "saveToSentItems": true,
        }),
        "recipients trimmed and deduplicated ignoring case"
    );
    assert_eq!(sent[1]["message"]["subject"], "Second");
    assert_eq!(sent[1]["message"]["toRecipients"], json!([{"emailAddress": {"address": "noc@msp.example"}}]));
    assert_eq!(count(&sb, TOKEN_ROUTE), 1, "one token for two mails");
    assert_eq!(sb.notify().tokens_issued(), 1);
    assert_eq!(count(&sb, SEND_ROUTE), 2);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once() {
    let sb = sandbox().await;
    let mailer = mailer(graph_settings(&sb));
    mailer.send(&notification(&["a@client.example"], "One")).await.expect("first mail");
    sb.notify().revoke_tokens();
    mailer.send(&notification(&["a@client.example"], "Two")).await.expect("second mail after a 401");
    assert_eq!(sb.notify().tokens_issued(), 2);
    assert_eq!(sb.sent_mail().len(), 2);
    assert_eq!(sb.stats().total(), 5, "token, mail, 401, token, mail");
}

#[tokio::test]
async fn a_wrong_secret_is_permission_denied_and_never_shown() {
    let sb = sandbox().await;
    let secret = "wrong-Graph-secret~9f8e7d";
    let mailer = mailer(GraphMailSettings { client_secret: secret.into(), ..graph_settings(&sb) });
    let err = mailer.send(&notification(&["a@client.example"], "S")).await.expect_err("wrong secret");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, NotifyError::PermissionDenied { .. }), "{text}");
    assert!(text.contains("AADSTS7000215"), "Entra's reason is kept: {text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains(GRAPH_CLIENT_SECRET), "{text}");
    assert_eq!(count(&sb, SEND_ROUTE), 0, "no mail without a token");
    assert!(sb.sent_mail().is_empty());
}

#[tokio::test]
async fn an_unknown_tenant_is_a_configuration_error() {
    let sb = sandbox().await;
    let mailer =
        mailer(GraphMailSettings { tenant_id: "00000000-0000-0000-0000-000000000000".into(), ..graph_settings(&sb) });
    let err = mailer.send(&notification(&["a@client.example"], "S")).await.expect_err("unknown tenant");
    assert!(matches!(err, NotifyError::Configuration { .. }), "{err}");
    assert!(err.to_string().contains("AADSTS90002"), "{err}");
}

#[tokio::test]
async fn a_blocked_or_unknown_sender_is_refused() {
    let sb = sandbox().await;
    let mailer = mailer(GraphMailSettings { sender: GRAPH_BLOCKED_SENDER.into(), ..graph_settings(&sb) });
    let err = mailer.send(&notification(&["a@client.example"], "S")).await.expect_err("blocked sender");
    assert!(matches!(err, NotifyError::PermissionDenied { .. }), "{err}");
    assert!(err.to_string().contains("ErrorAccessDenied"), "{err}");
    assert!(err.to_string().contains(GRAPH_BLOCKED_SENDER), "names the sender: {err}");

    let mailer = self::mailer(GraphMailSettings { sender: "nobody@msp.example".into(), ..graph_settings(&sb) });
    let err = mailer.send(&notification(&["a@client.example"], "S")).await.expect_err("unknown sender");
    assert!(matches!(err, NotifyError::Rejected { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("ErrorInvalidUser"), "{err}");
    assert!(sb.sent_mail().is_empty());
}

#[tokio::test]
async fn a_throttled_mail_is_retried_and_sent_once() {
    let sb = sandbox().await;
    let mailer = mailer(graph_settings(&sb));
    mailer.send(&notification(&["a@client.example"], "Warm-up")).await.expect("first mail");
    // The next request (sendMail) answers 429 TooManyRequests with Retry-After: 1.
    sb.fail_next(1, 429);
    let started = std::time::Instant::now();
    mailer.send(&notification(&["a@client.example"], "Throttled")).await.expect("mail after a 429");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "Retry-After honoured");
    let sent = sb.sent_mail();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["message"]["subject"], "Throttled");
    assert_eq!(mailer.http().counters().throttled.load(Ordering::Relaxed), 1);
    assert_eq!(mailer.http().counters().requests.load(Ordering::Relaxed), 4, "token, mail, 429, mail");

    // A 503 is not retried: the mail may have been queued, and a retry could send it twice.
    sb.fail_next(1, 503);
    let err = mailer.send(&notification(&["a@client.example"], "Unavailable")).await.expect_err("503");
    assert!(matches!(err, NotifyError::Connection { .. }), "{err}");
    assert!(err.to_string().contains("ServiceNotAvailable"), "{err}");
    assert_eq!(mailer.http().counters().requests.load(Ordering::Relaxed), 5, "no retry after a 503");
}

#[tokio::test]
async fn the_global_rate_limit_is_waited_out() {
    let sb = sandbox().await;
    sb.set_rate_limit(Some(2));
    let mailer = mailer(graph_settings(&sb));
    for i in 0..3 {
        mailer.send(&notification(&["a@client.example"], &format!("Mail {i}"))).await.expect("mail");
    }
    assert_eq!(sb.sent_mail().len(), 3);
    assert!(sb.stats().throttled() >= 1, "the sandbox throttled at least once");
}

#[tokio::test]
async fn an_invalid_recipient_is_a_configuration_error_and_nothing_is_sent() {
    let sb = sandbox().await;
    let mailer = mailer(graph_settings(&sb));
    for to in [&["bob@contoso.example", "Bob Wilson"][..], &["bob@contoso"], &[" "], &[]] {
        let err = mailer.send(&notification(to, "S")).await.expect_err("invalid recipients");
        assert!(matches!(err, NotifyError::Configuration { .. }), "{to:?}: {err}");
    }
    assert_eq!(sb.stats().total(), 0, "no request at all, not even for a token");
    assert_eq!(mailer.http().counters().requests.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_webhook_post_is_delivered() {
    let sb = sandbox().await;
    let hook = webhook(sb.webhook_url());
    assert_eq!(hook.channel(), "webhook");
    let message = notification(&["a@client.example", "A@client.example", "not an address"], "Offboarding done");
    hook.send(&message).await.expect("posted");
    assert_eq!(
        sb.webhook_posts(),
        vec![json!({
            "text": format!("Offboarding done\n\n{}", message.text),
            "subject": "Offboarding done",
            "recipients": ["a@client.example", "not an address"],
        })],
        "the channel ignores recipients, so a malformed one does not stop the post"
    );
    assert_eq!(sb.stats().count("POST", "/hooks"), 1);
}

#[tokio::test]
async fn a_wrong_webhook_token_is_rejected_and_never_shown() {
    let sb = sandbox().await;
    let token = "T0SBX5K3W/B0HOOK9Q2/not-the-right-token-77";
    let hook = webhook(format!("{}{HOOKS_PREFIX}/{token}", sb.base_url()));
    let err = hook.send(&notification(&[], "S")).await.expect_err("wrong token");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, NotifyError::Rejected { status: 404, .. }), "{text}");
    assert!(!text.contains("not-the-right-token-77"), "{text}");
    assert!(text.contains("127.0.0.1"), "the host is named: {text}");

    // A broken connection: the HTTP layer's error names the request path, which holds the token.
    sb.drop_next(1);
    let err = hook.send(&notification(&[], "S")).await.expect_err("broken connection");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, NotifyError::Connection { .. }), "{text}");
    assert!(!text.contains("not-the-right-token-77"), "{text}");
    assert!(!text.contains("B0HOOK9Q2"), "{text}");
    assert!(sb.webhook_posts().is_empty());
}

#[tokio::test]
async fn a_throttled_webhook_post_is_retried_once_delivered() {
    let sb = sandbox().await;
    let hook = webhook(sb.webhook_url());
    sb.fail_next(1, 429);
    hook.send(&notification(&[], "After 429")).await.expect("posted after a 429");
    assert_eq!(sb.webhook_posts().len(), 1);
    sb.fail_next(1, 500);
    let err = hook.send(&notification(&[], "S")).await.expect_err("500");
    assert!(matches!(err, NotifyError::Connection { .. }), "{err}");
    assert_eq!(sb.webhook_posts().len(), 1, "a 500 is not retried");
}
