//! Text that reaches people is clean: every free-text field of every Lambda entry point
//! refuses invisible Unicode format characters (a bidi override, a zero-width space) and
//! control characters with `InvalidInput` naming the field, and nothing changes (counted in
//! the sandbox). A requester address from the request reaches the MSP's mailbox only in an
//! allow-listed domain (`OFFRAMP_REQUESTER_EMAIL_DOMAINS`); outside it the run is refused
//! and no mail is sent (counted in the Graph simulator).

use offramp::config::ConfigSource;
use offramp::entry::{Function, handle};
use offramp_sandbox::{GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_SENDER, GRAPH_TENANT_ID, Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// A right-to-left override, a zero-width space, a byte-order mark, and a line feed.
const HOSTILE: [char; 4] = ['\u{202E}', '\u{200B}', '\u{FEFF}', '\n'];

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
}

fn source(sandbox: &Sandbox, dir: &tempfile::TempDir) -> ConfigSource {
    let mut source = offramp_tests::connectwise::source(sandbox, &dir.path().join("audit.sqlite"));
    source.set("ITGLUE_URL", sandbox.itglue_url());
    source.set("ITGLUE_API_KEY", offramp_sandbox::ITGLUE_API_KEY);
    source.set("OFFRAMP_ITGLUE_POLL_SECONDS", "1");
    for (key, value) in [
        ("OFFRAMP_NOTIFIER", "graph".to_string()),
        ("GRAPH_AUTHORITY_URL", sandbox.entra_url()),
        ("GRAPH_URL", sandbox.graph_url()),
        ("GRAPH_TENANT_ID", GRAPH_TENANT_ID.to_string()),
        ("GRAPH_CLIENT_ID", GRAPH_CLIENT_ID.to_string()),
        ("GRAPH_CLIENT_SECRET", GRAPH_CLIENT_SECRET.to_string()),
        ("GRAPH_SENDER", GRAPH_SENDER.to_string()),
    ] {
        source.set(key, value);
    }
    source
}

/// Set `field` (a dotted path: `approval.approved_by`, `offboarded_statuses.0`) in `request`.
fn with_field(mut request: Value, field: &str, text: &str) -> Value {
    let mut at = &mut request;
    let parts: Vec<&str> = field.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        at = match part.parse::<usize>() {
            Ok(index) => &mut at[index],
            Err(_) => &mut at[*part],
        };
    }
    let last = parts[parts.len() - 1];
    match last.parse::<usize>() {
        Ok(index) => at[index] = json!(text),
        Err(_) => at[last] = json!(text),
    }
    request
}

/// What the sandbox counts as changed: PSA writes, IT Glue deletions, mails and webhook posts.
fn changes(sandbox: &Sandbox) -> (u64, u64, usize, usize) {
    (
        sandbox.stats().patches(),
        sandbox.itglue().deletions_requested(),
        sandbox.sent_mail().len(),
        sandbox.webhook_posts().len(),
    )
}

/// Every free-text field of every function, each with a request that would otherwise change
/// something (a real run, confirmed), and the name the refusal must give the field.
fn cases(rollback_target: &str) -> Vec<(Function, Value, &'static str, &'static str)> {
    let configs = json!({"client_id": "250", "reason": "Client offboarded", "initiated_by": "tech@msp.example",
        "offboarded_statuses": ["Offboarded"]});
    let approved = json!({"client_id": "250", "approval": {"plan_hash": "a".repeat(64), "approved_by": "lead"}});
    let by_name = json!({"client_name": "Contoso Dental", "initiated_by": "tech@msp.example"});
    let contacts = json!({"company_id": 250, "confirmation": true, "reason": "Client offboarded",
        "initiated_by": "admin@msp.example", "requester_email": "admin@msp.example"});
    let rollback = json!({"operation_id": rollback_target, "reason": "Deactivated by mistake", "initiated_by": "lead"});
    let itglue = json!({"org_id": "9002", "confirm_delete": true, "reason": "Client offboarded",
        "initiated_by": "admin@msp.example"});
    let itglue_by_name = json!({"org_name": "Contoso Dental", "confirm_delete": true});
    vec![
        (Function::DeactivateConfigs, configs.clone(), "reason", "reason"),
        (Function::DeactivateConfigs, configs.clone(), "initiated_by", "initiated_by"),
        (Function::DeactivateConfigs, configs, "offboarded_statuses.0", "offboarded_statuses[]"),
        (Function::DeactivateConfigs, approved, "approval.approved_by", "approval.approved_by"),
        (Function::DeactivateConfigs, by_name, "client_name", "client_name"),
        (Function::DeactivateContacts, contacts.clone(), "reason", "reason"),
        (Function::DeactivateContacts, contacts.clone(), "initiated_by", "initiated_by"),
        (Function::DeactivateContacts, contacts, "requester_email", "requester_email"),
        (Function::Rollback, rollback.clone(), "reason", "reason"),
        (Function::Rollback, rollback, "initiated_by", "initiated_by"),
        (Function::DeleteItGlueOrg, itglue.clone(), "reason", "reason"),
        (Function::DeleteItGlueOrg, itglue, "initiated_by", "initiated_by"),
        (Function::DeleteItGlueOrg, itglue_by_name, "org_name", "org_name"),
    ]
}

fn first_error(answer: &Value) -> (String, String) {
    let error = &answer["errors"][0];
    (error["code"].as_str().unwrap_or_default().into(), error["message"].as_str().unwrap_or_default().into())
}

/// Each entry point refuses a bidi override, a zero-width space, a BOM and a line feed in
/// each of its free-text fields: `InvalidInput` (IT Glue names: `InvalidIdentifier`, the
/// seed's code) naming the field, and the sandbox counts no change, no mail, no post.
#[tokio::test]
async fn every_free_text_field_of_every_entry_point_refuses_invisible_and_control_characters() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let services = offramp::app::build(&source(&sandbox, &dir)).await.expect("services");
    // Something a rollback could undo: contacts of Parity Clinic (270), mailed to nobody.
    let done = handle(
        Function::DeactivateContacts,
        &services,
        json!({"company_id": 270, "confirmation": true, "initiated_by": "ops"}),
        "lambda:test",
    )
    .await;
    let operation_id = done["audit_trail"]["operation_id"].as_str().expect("an operation to roll back").to_string();
    let before = changes(&sandbox);
    let mut refused = 0;
    for (function, request, path, field) in cases(&operation_id) {
        for c in HOSTILE {
            let event = with_field(request.clone(), path, &format!("Offboarded {c}per ticket 4711"));
            let answer = handle(function, &services, event, "lambda:test").await;
            let (code, message) = first_error(&answer);
            let expected = if field == "org_name" { "InvalidIdentifier" } else { "InvalidInput" };
            assert_eq!(code, expected, "{function:?} {field} U+{:04X}: {answer}", c as u32);
            assert!(message.contains(field), "{function:?}: the message names {field}: {message}");
            assert!(message.contains(&format!("U+{:04X}", c as u32)), "{function:?} {field}: {message}");
            assert_eq!(changes(&sandbox), before, "{function:?} {field} U+{:04X}: nothing changed", c as u32);
            refused += 1;
        }
    }
    assert_eq!(refused, 13 * HOSTILE.len());
    // The same requests without the hostile character do go through (the refusals above
    // were the text's doing): one of them, to keep the sandbox small.
    let clean = handle(Function::DeleteItGlueOrg, &services, cases(&operation_id)[10].1.clone(), "lambda:test").await;
    assert_eq!(clean["deleted"], true, "{clean}");
}

/// `requester_email` outside `OFFRAMP_REQUESTER_EMAIL_DOMAINS` is refused before anything
/// changes, and the Graph simulator receives no mail; inside it, the requester is mailed.
/// An `initiated_by` address outside the list is simply not mailed.
#[tokio::test]
async fn a_requester_outside_the_allowed_domains_is_refused_and_nobody_is_mailed() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let services = offramp::app::build(&source(&sandbox, &dir)).await.expect("services");
    let request = |company: u32, requester: &str| {
        json!({"company_id": company, "confirmation": true, "reason": "Client offboarded",
            "initiated_by": "tech@msp.example", "requester_email": requester})
    };
    for outsider in ["boss@client.example", "x@msp.example.attacker.example", "a@evilmsp.example"] {
        let answer = handle(Function::DeactivateContacts, &services, request(270, outsider), "lambda:test").await;
        let (code, message) = first_error(&answer);
        assert_eq!(code, "InvalidInput", "{outsider}: {answer}");
        assert!(message.contains("OFFRAMP_REQUESTER_EMAIL_DOMAINS"), "{message}");
        assert_eq!(sandbox.sent_mail().len(), 0, "{outsider}: no mail");
        assert_eq!(sandbox.stats().patches(), 0, "{outsider}: nothing changed");
    }
    let quiet = json!({"company_id": 270, "confirmation": true, "initiated_by": "someone@client.example"});
    let answer = handle(Function::DeactivateContacts, &services, quiet, "lambda:test").await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(sandbox.sent_mail().len(), 0, "initiated_by outside the list: not mailed");
    assert!(sandbox.stats().patches() > 0, "the run itself went ahead");

    let allowed =
        handle(Function::DeactivateContacts, &services, request(250, "Boss@MSP.example"), "lambda:test").await;
    assert_eq!(allowed["success"], true, "{allowed}");
    let mails = sandbox.sent_mail();
    assert_eq!(mails.len(), 1, "the allow-listed requester is mailed: {allowed}");
    let to = mails[0]["message"]["toRecipients"].to_string();
    assert!(to.contains("Boss@MSP.example") && !to.contains("client.example"), "{to}");
}
