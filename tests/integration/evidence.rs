//! The evidence report (docs/evidence.md): the in-process chain on the ConnectWise sandbox
//! renders one document from the trail, stores it beside the trail and links it from the
//! ticket's note. The document is checked against the trail and the simulator (every child
//! operation, every changed contact and configuration with before and after, the approver
//! and the time), hostile vendor names stay text, and Chromium loads it without a console
//! error (screenshot: target/test-artifacts/evidence-report.png). The S3 store on moto.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^evidence::/)'`

use std::collections::BTreeSet;

use offramp::adapters::evidence_s3::{S3Evidence, S3EvidenceSettings};
use offramp::chain::{ChainStep, InProcessConsent};
use offramp::domain::{ItemKind, ItemOutcome};
use offramp::ports::EvidenceStore;
use offramp::workflows::org_settings::CHAIN_REQUIRE_APPROVAL;
use offramp_tests::chain::{Chain, request};
use offramp_tests::chromium::Driver;
use offramp_tests::moto;

const HOSTILE_CONTACT: &str = "<script>alert('contact')</script>";
const HOSTILE_CONFIG: &str = "<img src=x onerror=alert(1)>";
/// A bidi override: what follows it displays reversed unless it is shown for what it is.
const BIDI_LAST_NAME: &str = "Wilson\u{202E}gpj.exe";

async fn offboarded_client() -> (Chain, offramp::chain::ClientOffboardingReport) {
    let chain = Chain::start().await;
    let cw = chain.sandbox.connectwise();
    cw.set_contact_name(5001, HOSTILE_CONTACT, "Doe");
    cw.set_contact_name(5002, "Bob", BIDI_LAST_NAME);
    cw.set_configuration_name(25001, HOSTILE_CONFIG);
    let steps = [ChainStep::DeactivateContacts, ChainStep::DeactivateConfigs];
    let plan = chain.run(request("250", &steps, true), &InProcessConsent::default()).await;
    let consent = InProcessConsent { approved_by: Some("Dana Approver".into()), plan_hash: plan.plan_hash.clone() };
    let done = chain.run(request("250", &steps, false), &consent).await;
    assert_eq!(done.status, "completed", "{done:?}");
    (chain, done)
}

/// The stored document holds every child operation, every changed item with its before and
/// after, the approver and the time; the ticket's note names where it is.
#[tokio::test]
async fn the_chain_stores_one_document_of_everything_it_did() {
    let (chain, done) = offboarded_client().await;
    let parent = done.operation_id.clone().unwrap();
    let stored = done.evidence.clone().expect("the report names the stored evidence");
    let html = std::fs::read_to_string(&stored.location).expect("the evidence file beside the trail");
    assert!(stored.location.starts_with(&chain.dir.path().display().to_string()), "{stored:?}");
    assert_eq!(stored.size, html.len() as u64);

    let audit = chain.workflows().audit.clone();
    let children = audit.child_operations(&parent).await.unwrap();
    assert!(children.len() >= 4, "two dry runs and two real runs: {children:?}");
    for child in &children {
        assert!(html.contains(&child.operation_id), "child {} is in the document", child.operation_id);
    }
    // Every item the simulator saw updated is in the document with its before and after.
    let psa = chain.sandbox.psa("connectwise");
    let changed_contacts: BTreeSet<i64> =
        psa.contact_ids_of(250).into_iter().filter(|id| psa.contact_update_count(*id) > 0).collect();
    let changed_configs: BTreeSet<i64> =
        psa.configuration_ids_of(250).into_iter().filter(|id| psa.update_count(*id) > 0).collect();
    assert!(!changed_contacts.is_empty() && !changed_configs.is_empty());
    for id in changed_contacts.iter().chain(&changed_configs) {
        let cell = format!("<tr><td class=\"mono\">{id}</td>");
        assert!(html.contains(&cell), "item {id} has a row");
    }
    // Before → after, as the trail recorded them, for a configuration and a contact.
    for child in children.iter().filter(|c| !c.dry_run) {
        let detail = audit.operation(&child.operation_id).await.unwrap().unwrap();
        let change = detail.changes.iter().find(|c| c.outcome == ItemOutcome::Changed).expect("a change");
        let diff = offramp::evidence::differences(&change.before, change.after.as_ref());
        let (field, _, after) = diff.first().expect("the change differs from before");
        let shown = format!("{}: ", offramp::html::escape(field));
        assert!(html.contains(&shown), "{field} of {} shown", change.item_id);
        assert!(html.contains(&offramp::html::escape(after)) || after.len() > 300, "{after}");
        assert!(matches!(
            change.item_type,
            ItemKind::Contact
                | ItemKind::Configuration
                | ItemKind::Ticket
                | ItemKind::ConfigurationContact
                | ItemKind::TicketNote
                | ItemKind::Notification
        ));
    }
    assert!(html.contains("Dana Approver"), "the approver");
    assert!(html.contains(&done.plan_hash.clone().unwrap()), "the approved plan hash");
    let bound_at = audit.operation(&parent).await.unwrap().unwrap().operation.created_at.date_naive().to_string();
    assert!(html.contains(&bound_at), "the time");

    // Hostile names are text; the bidi override is shown as a code point.
    assert!(!html.contains("<script") && !html.contains("<img"), "no markup from a vendor");
    assert!(html.contains("&lt;script&gt;alert(&#39;contact&#39;)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("Wilson[U+202E]gpj.exe") && !html.contains('\u{202E}'));

    // The ticket's summary note links it.
    let ticket: i64 = done.ticket_id.as_deref().unwrap().parse().unwrap();
    let notes = chain.sandbox.psa("connectwise").ticket(ticket).unwrap().notes;
    assert!(notes.iter().any(|n| n.contains(&stored.location) && n.contains(&stored.sha256)), "{notes:?}");
    // And the store gives it back; the trail renders the same operation again.
    let store = chain.workflows().evidence.clone().expect("a local evidence store");
    assert_eq!(store.get(&parent).await.unwrap().as_deref(), Some(html.as_str()));
    let again = offramp::evidence::render_operation(audit.as_ref(), &parent).await.unwrap();
    assert!(again.contains("Dana Approver") && again.contains(&children[0].operation_id));
}

/// In Chromium: loads without a console error (a CSP violation would be one), the content
/// is there as text, a screenshot is kept, and the page prints to PDF.
#[tokio::test]
async fn the_document_loads_in_chromium_without_errors_and_prints() {
    let (_chain, done) = offboarded_client().await;
    let stored = done.evidence.expect("stored");
    let driver = Driver::start().await;
    driver.open(&format!("file://{}", stored.location)).await;
    let body = driver.text("body").await;
    assert!(body.contains(HOSTILE_CONTACT), "the hostile name shown as text:\n{body}");
    assert!(body.contains("Dana Approver"));
    let approver = driver.text("#approval .approver").await;
    assert!(approver.contains("Dana Approver"), "{approver}");
    let errors: Vec<_> = driver.console().await.into_iter().filter(|(level, _)| level == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let screenshot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/evidence-report.png");
    driver.screenshot(&screenshot).await;
    let pdf = driver.print_pdf().await;
    assert!(pdf.starts_with(b"%PDF") && pdf.len() > 5_000, "a PDF of {} bytes", pdf.len());
    driver.quit().await;
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a real screenshot");
}

/// A store that cannot be written: the chain's changes stand, the report and the trail say
/// the evidence failed, and the note has no link.
#[tokio::test]
async fn an_evidence_store_that_fails_undoes_nothing_and_is_reported() {
    let chain = Chain::start().await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    // The local store's directory cannot be made: a file is where it would go.
    std::fs::write(chain.dir.path().join("evidence"), b"not a directory").unwrap();
    let report = chain.run(request("250", &[ChainStep::DeactivateConfigs], false), &InProcessConsent::default()).await;
    assert_eq!(chain.active_configs(250), 0, "the configurations were deactivated all the same");
    assert_eq!(report.evidence, None);
    assert!(report.errors.iter().any(|e| e.code.as_str() == "EvidenceStoreFailed"), "{report:?}");
    let parent = report.operation_id.unwrap();
    let detail = chain.workflows().audit.operation(&parent).await.unwrap().unwrap();
    let last = detail.last_event().unwrap();
    assert!(last.detail["errors"].to_string().contains("EvidenceStoreFailed"), "{last:?}");
}

/// The S3 store on moto, against a bucket like the template's (versioned, Object Lock,
/// SSE-KMS): put answers the location, version and digest; get reads the newest back; a
/// second put is a new version; an id that is not a UUID sends nothing.
#[tokio::test]
async fn the_s3_store_keeps_every_version_encrypted() {
    let s3 = moto::s3_client().await;
    let bucket = moto::unique_name("offramp-evidence");
    s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.unwrap();
    let key = moto::create_kms_key("evidence").await;
    let settings = S3EvidenceSettings { bucket: bucket.clone(), kms_key_id: Some(key.clone()), retention_days: 1 };
    let store = S3Evidence::new(s3.clone(), settings);
    let id = uuid::Uuid::now_v7().to_string();
    assert_eq!(store.get(&id).await.unwrap(), None);
    let first = store.put(&id, "<p>first</p>").await.unwrap();
    assert_eq!(first.location, format!("s3://{bucket}/evidence/{id}.html"));
    let second = store.put(&id, "<p>second</p>").await.unwrap();
    assert_ne!(first.version_id, second.version_id, "a second put is a new version");
    assert_eq!(store.get(&id).await.unwrap().as_deref(), Some("<p>second</p>"));
    let head = s3.head_object().bucket(&bucket).key(format!("evidence/{id}.html")).send().await.unwrap();
    assert_eq!(head.ssekms_key_id(), Some(key.as_str()), "encrypted with the configured key");
    assert!(head.object_lock_retain_until_date().is_some(), "retained");
    let versions = s3.list_object_versions().bucket(&bucket).prefix("evidence/").send().await.unwrap();
    assert_eq!(versions.versions().len(), 2, "both versions kept");
    assert!(store.put("../x", "<p>no</p>").await.is_err());
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1), "nothing else was written");
}
