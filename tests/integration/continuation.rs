//! Runs that outlive one invocation (docs/architecture.md#runs-that-outlive-one-invocation):
//! a Lambda entry called in a loop with a short deadline, fed back its report's
//! `continuation.operation_id` until a report has none, as the state machine's `Choice` does.
//! Every effect is counted in the simulator (PATCHes per configuration, updates per contact)
//! and in the audit trail, never in the reports.

use std::collections::HashMap;
use std::time::Duration;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::domain::{ItemKind, ItemOutcome, OperationDetail, OperationEventKind};
use offramp::entry::{Answer, Function, FunctionServices};
use offramp::operation::Deadline;
use offramp::ports::AuditStore;
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::connectwise::source;
use serde_json::{Value, json};

/// Configurations of the large client (company 300) in the configuration test.
const CONFIGS: usize = 3_000;
/// Work allowed per invocation: far less than the run needs at the injected latency.
const WORK_PER_INVOCATION: Duration = Duration::from_millis(1_500);
/// More invocations than this is a run that makes no progress.
const MAX_INVOCATIONS: usize = 60;

struct Loop {
    invocations: usize,
    /// The answers, in order.
    answers: Vec<Answer>,
}

/// Call `function` with `first`, then with the continuation's `operation_id` in `resume`'s
/// request, until an answer carries no continuation.
async fn until_done(
    services: &FunctionServices,
    function: Function,
    first: Value,
    resume: impl Fn(&str) -> Value,
    work: Duration,
) -> Loop {
    let mut answers = Vec::new();
    let mut event = first;
    loop {
        let answer = services.handle_until(function, event, "lambda:test", Deadline::after(work)).await;
        assert_eq!(answer.error, None, "a continuation is an answer, never a Lambda error: {answer}");
        let next = answer.get("continuation").cloned();
        answers.push(answer);
        let Some(continuation) = next else { break };
        assert_eq!(continuation["reason"], "deadline", "{continuation}");
        assert!(answers.len() < MAX_INVOCATIONS, "no end in sight after {} invocations", answers.len());
        event = resume(continuation["operation_id"].as_str().expect("the continuation's operation_id"));
    }
    Loop { invocations: answers.len(), answers }
}

/// The operation's trail, read from the SQLite file the services wrote.
async fn trail(dir: &tempfile::TempDir, operation_id: &str) -> OperationDetail {
    let audit = SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("sqlite");
    audit.operation(operation_id).await.expect("read").expect("the operation")
}

/// Records after the intents, per item of `kind`.
fn results_per_item(detail: &OperationDetail, kind: ItemKind) -> HashMap<String, Vec<ItemOutcome>> {
    let mut per_item: HashMap<String, Vec<ItemOutcome>> = HashMap::new();
    for change in detail.changes.iter().filter(|c| c.item_type == kind && c.outcome != ItemOutcome::Intended) {
        per_item.entry(change.item_id.clone()).or_default().push(change.outcome);
    }
    per_item
}

fn events(detail: &OperationDetail, kind: OperationEventKind) -> usize {
    detail.events.iter().filter(|e| e.kind == kind).count()
}

async fn services(sandbox: &Sandbox, dir: &tempfile::TempDir, function: Function) -> FunctionServices {
    let mut source = source(sandbox, &dir.path().join("audit.sqlite"));
    source.set("OFFRAMP_NOTIFIER", "webhook");
    source.set("OFFRAMP_WEBHOOK_URL", sandbox.webhook_url());
    FunctionServices::build(function, &source).await.expect("services")
}

/// The large client (company 300, [`CONFIGS`] configurations) at 20 ms per request, with
/// the configuration function's services. ~8 in flight at 20 ms each: about 400 a second,
/// so 3,000 need several invocations.
async fn large_client() -> (Sandbox, tempfile::TempDir, FunctionServices) {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: CONFIGS, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir, Function::DeactivateConfigs).await;
    (sandbox, dir, services)
}

/// The first invocation's request for the large client, as the state machine sends it.
fn first_configs_request() -> serde_json::Value {
    json!({
        "client_id": 300, "allow_active_client": true, "override_blast_radius": true,
        "initiated_by": "states:execution:test", "reason": "contract ended",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_configuration_deactivation_completes_across_invocations_changing_each_once() {
    let (sandbox, dir, services) = large_client().await;
    let first = first_configs_request();
    let resume = |id: &str| json!({ "operation_id": id, "initiated_by": "states:execution:test" });
    let run = until_done(&services, Function::DeactivateConfigs, first, resume, WORK_PER_INVOCATION).await;

    assert!(run.invocations >= 3, "the deadline split the run: {} invocation(s)", run.invocations);
    let operation_id = run.answers[0]["operation_id"].as_str().unwrap().to_string();
    for answer in &run.answers[..run.invocations - 1] {
        assert_eq!(answer["continuation"]["operation_id"], operation_id.as_str(), "one operation throughout");
        assert_eq!(answer["errors"][0]["code"], "DeadlineReached", "{answer}");
        assert!(answer["continuation"]["remaining"].as_u64().unwrap() > 0, "{answer}");
    }
    let last = run.answers.last().unwrap();
    assert_eq!(last["success"], true, "{last}");
    assert_eq!(last.get("continuation"), None);
    assert_eq!(last["statistics"]["configs_deactivated"], CONFIGS as u64, "{}", last["statistics"]);

    // The simulator: every configuration inactive, each PATCHed exactly once.
    let cw = sandbox.connectwise();
    let configs = cw.configurations_of(300);
    assert_eq!(configs.len(), CONFIGS);
    let twice: Vec<i64> =
        configs.iter().map(|c| c["id"].as_i64().unwrap()).filter(|id| cw.patch_count(*id) != 1).collect();
    assert!(
        twice.is_empty(),
        "{} configuration(s) not PATCHed exactly once: {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert!(configs.iter().all(|c| c["status"]["name"] == "Inactive"), "every configuration inactive");
    assert_eq!(sandbox.stats().patches(), CONFIGS as u64);

    // The trail: one result per configuration, a change, nothing uncertain; paused, then completed.
    let detail = trail(&dir, &operation_id).await;
    let results = results_per_item(&detail, ItemKind::Configuration);
    assert_eq!(results.len(), CONFIGS);
    let odd: Vec<_> = results.iter().filter(|(_, r)| r.as_slice() != [ItemOutcome::Changed]).take(5).collect();
    assert!(odd.is_empty(), "each configuration has exactly one change record: {odd:?}");
    assert_eq!(events(&detail, OperationEventKind::Paused), run.invocations - 1);
    assert_eq!(events(&detail, OperationEventKind::Resumed), run.invocations - 1);
    assert_eq!(events(&detail, OperationEventKind::Completed), 1);
    assert_eq!(events(&detail, OperationEventKind::Failed), 0, "a deadline is not a failure");
}

/// A deadline reached mid-window: units already sent finish and are recorded, the rest of
/// the window (intents written, never sent) are left to the next invocation, which sends
/// them once: nothing lost, nothing uncertain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_middle_of_a_window_loses_nothing() {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 400, ..SandboxConfig::default() }).await.unwrap();
    // 8 in flight at 100 ms: a window of 100 takes over a second; stop 300 ms into the first.
    sandbox.set_latency(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir, Function::DeactivateConfigs).await;
    let first = json!({ "client_id": 300, "allow_active_client": true, "initiated_by": "t", "reason": "r" });
    // Listing and planning take some of the first invocation; give it enough to start sending.
    let answer =
        services.handle_until(Function::DeactivateConfigs, first, "t", Deadline::after(Duration::from_secs(1))).await;
    let continuation = answer.get("continuation").cloned().unwrap_or_else(|| panic!("stopped early: {answer}"));
    let sent = sandbox.stats().patches();
    assert!(sent > 0 && sent % 100 != 0, "stopped inside a window, after {sent} PATCH(es)");
    let operation_id = continuation["operation_id"].as_str().unwrap().to_string();
    let intents_before =
        trail(&dir, &operation_id).await.changes.iter().filter(|c| c.outcome == ItemOutcome::Intended).count() as u64;
    assert!(intents_before > sent, "the window's unsent items had their intents written ({intents_before} > {sent})");

    sandbox.set_latency(Duration::ZERO);
    let resume = json!({ "operation_id": operation_id, "initiated_by": "t" });
    let done = services.handle(Function::DeactivateConfigs, resume, "t").await;
    assert_eq!(done["success"], true, "{done}");
    let cw = sandbox.connectwise();
    assert!(cw.configurations_of(300).iter().all(|c| cw.patch_count(c["id"].as_i64().unwrap()) == 1));
    let detail = trail(&dir, &operation_id).await;
    let results = results_per_item(&detail, ItemKind::Configuration);
    assert_eq!(results.len(), 400);
    assert!(results.values().all(|r| r.as_slice() == [ItemOutcome::Changed]), "no item lost or uncertain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_deactivation_completes_across_invocations_changing_each_once() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 20, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_latency(Duration::from_millis(30));
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir, Function::DeactivateContacts).await;
    let first = json!({
        "company_id": 300, "confirmation": true, "override_blast_radius": true,
        "initiated_by": "ops@msp.example", "reason": "contract ended",
    });
    let resume = |id: &str| json!({ "operation_id": id, "initiated_by": "ops@msp.example" });
    let run = until_done(&services, Function::DeactivateContacts, first, resume, Duration::from_millis(400)).await;

    assert!(run.invocations >= 2, "the deadline split the run: {} invocation(s)", run.invocations);
    let last = run.answers.last().unwrap();
    assert_eq!(last["success"], true, "{last}");
    let operation_id = run.answers[0]["continuation"]["operation_id"].as_str().unwrap().to_string();
    assert_eq!(last["audit_trail"]["operation_id"], operation_id.as_str());

    let sim = sandbox.psa("connectwise");
    let contacts = sim.contact_ids_of(300);
    assert_eq!(contacts.len(), 250);
    assert!(contacts.iter().all(|id| sim.contact_is_active(*id) == Some(false)), "every contact inactive");
    let not_once: Vec<_> = contacts.iter().filter(|id| sim.contact_update_count(**id) != 1).collect();
    assert!(not_once.is_empty(), "each contact updated exactly once: {not_once:?}");

    let detail = trail(&dir, &operation_id).await;
    let results = results_per_item(&detail, ItemKind::Contact);
    assert_eq!(results.len(), 250);
    assert!(results.values().all(|r| r.as_slice() == [ItemOutcome::Changed]), "one change record per contact");
    assert_eq!(events(&detail, OperationEventKind::Paused), run.invocations - 1);
    assert_eq!(events(&detail, OperationEventKind::Completed), 1);
    // The summary note and the notification describe the finished run: written once, at the end.
    assert_eq!(results_per_item(&detail, ItemKind::Notification).len(), 1);
    assert_eq!(sandbox.webhook_posts().len(), 1, "one notification, after the last invocation");
}

/// Company 300 with 300 configurations (one invocation's work), with the configuration
/// function's services.
async fn small_client() -> (Sandbox, tempfile::TempDir, FunctionServices) {
    let sandbox =
        Sandbox::start(SandboxConfig { large_client_configs: 300, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = services(&sandbox, &dir, Function::DeactivateConfigs).await;
    (sandbox, dir, services)
}

/// With no deadline (the CLI, `entry::handle`) a run goes to its end in one call.
#[tokio::test]
async fn without_a_deadline_a_run_needs_no_continuation() {
    let (_sandbox, _dir, services) = small_client().await;
    let request = json!({ "client_id": 300, "allow_active_client": true, "initiated_by": "t", "reason": "r" });
    let answer = services.handle(Function::DeactivateConfigs, request, "t").await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer.get("continuation"), None);
}

/// Invocations whose time all goes before their first change (here: a deadline already
/// past) pause without a record; after [`offramp::operation::resume::STALLED_INVOCATIONS`]
/// such pauses in a row, the next resume under a deadline fails with a Lambda error the
/// state machine's `Catch` takes, instead of pausing once more (a `Choice` would loop
/// without end). Nothing is PATCHed by the stalled or the refused invocations, and the same
/// resume without a deadline (the CLI's) finishes the run, each configuration once.
#[tokio::test]
async fn invocations_that_change_nothing_stop_the_loop_and_the_cli_can_still_finish() {
    let (sandbox, dir, services) = small_client().await;
    let no_time = || Deadline::after(Duration::ZERO);
    let first = services.handle_until(Function::DeactivateConfigs, first_configs_request(), "t", no_time()).await;
    assert_eq!(first["errors"][0]["code"], "DeadlineReached", "{first}");
    let operation_id = first["continuation"]["operation_id"].as_str().expect("a continuation").to_string();
    let resume = json!({ "operation_id": operation_id, "initiated_by": "states:execution:test" });
    for _ in 1..offramp::operation::resume::STALLED_INVOCATIONS {
        let paused = services.handle_until(Function::DeactivateConfigs, resume.clone(), "t", no_time()).await;
        assert!(paused.get("continuation").is_some(), "still paused, not refused yet: {paused}");
    }
    let events_before = trail(&dir, &operation_id).await.events.len();
    let refused = services.handle_until(Function::DeactivateConfigs, resume.clone(), "t", no_time()).await;
    assert_eq!(refused.error_type(), Some("OperationNotResumable"), "{refused}");
    assert!(refused.to_string().contains("without changing or recording any item"), "{refused}");
    assert_eq!(refused.get("continuation"), None, "{refused}");
    assert_eq!(trail(&dir, &operation_id).await.events.len(), events_before, "a refusal writes nothing");
    let cw = sandbox.connectwise();
    let configs = cw.configurations_of(300);
    assert!(configs.iter().all(|c| cw.patch_count(c["id"].as_i64().unwrap()) == 0), "nothing PATCHed so far");

    let finished = services.handle(Function::DeactivateConfigs, resume, "t").await;
    assert_eq!(finished["success"], true, "{finished}");
    assert_eq!(finished["statistics"]["configs_deactivated"], 300, "{finished}");
    assert!(configs.iter().all(|c| cw.patch_count(c["id"].as_i64().unwrap()) == 1), "each PATCHed once");
}

/// Listing requests of the client's configurations the sandbox has served so far.
fn configuration_listings(sandbox: &Sandbox) -> u64 {
    sandbox.stats().count("GET", "/company/configurations")
}

/// A resumed invocation reads the configurations it is about to work on (one id range of
/// 1,000 at a time), not the whole client; the whole client is read once more only by the
/// invocation that finishes (docs/reliability.md#runs-across-invocations). What others
/// changed in the PSA between invocations is still caught: a configuration set inactive by
/// someone else is recorded as skipped, never claimed; one moved to another status is left
/// alone; neither is PATCHed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_reads_only_what_it_works_on_and_still_catches_changes_made_meanwhile() {
    let (sandbox, dir, services) = large_client().await;
    let first = first_configs_request();
    let answer =
        services.handle_until(Function::DeactivateConfigs, first, "t", Deadline::after(WORK_PER_INVOCATION)).await;
    let operation_id =
        answer["continuation"]["operation_id"].as_str().unwrap_or_else(|| panic!("{answer}")).to_string();
    // Someone else acts on two configurations the run has not reached (the last two).
    let cw = sandbox.connectwise();
    let (outside_inactive, outside_disposed) = (300_000 + CONFIGS as i64, 300_000 + CONFIGS as i64 - 1);
    assert_eq!((cw.patch_count(outside_inactive), cw.patch_count(outside_disposed)), (0, 0));
    cw.set_configuration_status(outside_inactive, 2);
    cw.set_configuration_status(outside_disposed, 4);

    let mut pages_per_resume = Vec::new();
    let mut warnings = String::new();
    let mut answer = answer;
    while answer.get("continuation").is_some() {
        let before = configuration_listings(&sandbox);
        let resume = json!({ "operation_id": operation_id, "initiated_by": "states:execution:test" });
        answer =
            services.handle_until(Function::DeactivateConfigs, resume, "t", Deadline::after(WORK_PER_INVOCATION)).await;
        pages_per_resume.push((configuration_listings(&sandbox) - before, answer.get("continuation").is_none()));
        // Said by the invocation that decided it (not always the last).
        warnings.push_str(&answer["warnings"].to_string());
        assert!(pages_per_resume.len() < MAX_INVOCATIONS, "no end in sight");
    }
    assert_eq!(answer["success"], true, "{answer}");
    assert!(pages_per_resume.len() >= 2, "several resumes: {pages_per_resume:?}");
    // A whole listing of 3,000 is 3 pages; an invocation that sends about 600 updates reads
    // one id range (two when it crosses into the next range).
    let full = CONFIGS.div_ceil(1000) as u64;
    for (pages, last) in &pages_per_resume {
        let most = if *last { 2 + full } else { 2 };
        assert!(*pages <= most, "a resume read {pages} page(s) (last: {last}): {pages_per_resume:?}");
    }

    // The simulator: the two changed by someone else were never PATCHed; the rest once.
    assert_eq!((cw.patch_count(outside_inactive), cw.patch_count(outside_disposed)), (0, 0));
    let configs = cw.configurations_of(300);
    let others = configs
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .filter(|id| ![outside_inactive, outside_disposed].contains(id));
    assert!(others.into_iter().all(|id| cw.patch_count(id) == 1), "every other configuration PATCHed once");
    // The trail says exactly what changed: the two are skipped, every other one changed once.
    let results = results_per_item(&trail(&dir, &operation_id).await, ItemKind::Configuration);
    assert_eq!(results.len(), CONFIGS);
    for id in [outside_inactive, outside_disposed] {
        assert_eq!(results[&id.to_string()], [ItemOutcome::Skipped], "configuration {id}");
    }
    let changed = results.values().filter(|r| r.as_slice() == [ItemOutcome::Changed]).count();
    assert_eq!(changed, CONFIGS - 2);
    assert!(warnings.contains(&format!("Configuration {outside_inactive} ")), "{warnings}");
}
