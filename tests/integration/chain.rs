//! The client-offboarding chain (docs/architecture.md#the-client-offboarding-chain): in
//! process on the ConnectWise sandbox, through the same step events the state machine
//! sends, and the state machine definition itself kept equal to the in-process stages.
//! Effects are counted in the simulators; the chain's own report is only cross-checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use offramp::chain::{
    ChainInputs, ChainStep, ClientOffboardingReport, ClientOffboardingRequest, InProcessConsent, STAGES, Stage,
    StepCall, run_chain,
};
use offramp::config::ConfigSource;
use offramp::domain::{GLOBAL_SCOPE, SettingRecord, Workflow};
use offramp::entry::{Function, FunctionServices, InProcessSteps, chain_deps, function_of};
use offramp::workflows::org_settings::{CHAIN_RECIPIENTS, CHAIN_REQUIRE_APPROVAL};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::connectwise::source;
use serde_json::{Value, json};

struct Chain {
    sandbox: Sandbox,
    services: FunctionServices,
    dir: tempfile::TempDir,
}

impl Chain {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The chain with these settings added to the sandbox's environment.
    async fn start_with(settings: &[(&str, &str)]) -> Self {
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut source: ConfigSource = source(&sandbox, &dir.path().join("audit.sqlite"));
        for (key, value) in settings {
            source.set(*key, *value);
        }
        source.set("OFFRAMP_NOTIFIER", "webhook");
        source.set("OFFRAMP_WEBHOOK_URL", sandbox.webhook_url());
        source.set("ITGLUE_URL", sandbox.itglue_url());
        source.set("ITGLUE_API_KEY", offramp_sandbox::ITGLUE_API_KEY);
        source.set("OFFRAMP_ITGLUE_POLL_SECONDS", "1");
        let services = FunctionServices::build(Function::Orchestrator, &source).await.expect("services");
        let chain = Self { sandbox, services, dir };
        chain.set_global(CHAIN_RECIPIENTS, "ops@msp.example").await;
        chain
    }

    fn workflows(&self) -> &offramp::app::Services {
        match &self.services {
            FunctionServices::Workflows(services) => services,
            _ => panic!("the chain's services without Microsoft 365 are the workflows'"),
        }
    }

    async fn set_global(&self, key: &str, value: &str) {
        let record = SettingRecord {
            psa: "connectwise".into(),
            scope: GLOBAL_SCOPE.into(),
            key: key.into(),
            value: Some(value.into()),
            set_by: "test".into(),
            set_at: chrono::Utc::now(),
        };
        self.workflows().org_settings.put_setting(&record).await.expect("setting");
    }

    async fn run(&self, request: ClientOffboardingRequest, consent: &InProcessConsent) -> ClientOffboardingReport {
        let steps = InProcessSteps { services: &self.services, invoked_by: "test".into() };
        let deps = chain_deps(&self.services, &steps, None).expect("deps");
        run_chain(&deps, request, consent).await
    }

    fn active_contacts(&self, company: i64) -> usize {
        let psa = self.sandbox.psa("connectwise");
        psa.contact_ids_of(company).into_iter().filter(|id| psa.contact_is_active(*id) == Some(true)).count()
    }

    fn active_configs(&self, company: i64) -> usize {
        let psa = self.sandbox.psa("connectwise");
        psa.configuration_ids_of(company)
            .into_iter()
            .filter(|id| psa.configuration_is_active(*id) == Some(true))
            .count()
    }

    /// Contact and configuration update attempts that reached the simulator for `company`.
    fn updates(&self, company: i64) -> usize {
        let psa = self.sandbox.psa("connectwise");
        let contacts: usize = psa.contact_ids_of(company).into_iter().map(|id| psa.contact_update_count(id)).sum();
        let configs: usize = psa.configuration_ids_of(company).into_iter().map(|id| psa.update_count(id)).sum();
        contacts + configs
    }
}

fn request(client_id: &str, steps: &[ChainStep], dry_run: bool) -> ClientOffboardingRequest {
    ClientOffboardingRequest {
        client_id: Some(client_id.into()),
        steps: Some(steps.to_vec()),
        dry_run,
        reason: Some("Contract ended".into()),
        initiated_by: Some("tech@msp.example".into()),
        ..Default::default()
    }
}

const PSA_STEPS: [ChainStep; 2] = [ChainStep::DeactivateContacts, ChainStep::DeactivateConfigs];

/// Dry run, then approval bound to the dry run's plan hash: both steps run as children of
/// one parent operation, the simulator holds every contact and configuration inactive, the
/// ticket carries the summary note, and a second run under the stale hash changes nothing.
#[tokio::test]
async fn a_dry_run_then_its_approval_offboards_the_client_once() {
    let chain = Chain::start().await;
    let (contacts_before, configs_before) = (chain.active_contacts(250), chain.active_configs(250));
    assert!(contacts_before > 0 && configs_before > 0, "the fixture has work to do");

    let plan = chain.run(request("250", &PSA_STEPS, true), &InProcessConsent::default()).await;
    assert_eq!(plan.status, "planned", "{plan:?}");
    assert_eq!(plan.steps.len(), 2, "{plan:?}");
    assert!(plan.steps.iter().all(|s| s.result["plan_hash"].is_string()), "{plan:?}");
    assert_eq!(chain.updates(250), 0, "a dry run changes nothing");
    let hash = plan.plan_hash.clone().expect("a chain plan hash");

    let unapproved = chain.run(request("250", &PSA_STEPS, false), &InProcessConsent::default()).await;
    assert_eq!(unapproved.status, "approval_required", "{unapproved:?}");
    assert_eq!(chain.updates(250), 0, "nothing changes before the approval");

    // An approver's name that hides text (a bidi override) is refused; nothing changes.
    let hidden = InProcessConsent { approved_by: Some("Dana\u{202E}ekim".into()), plan_hash: Some(hash.clone()) };
    let refused = chain.run(request("250", &PSA_STEPS, false), &hidden).await;
    assert_eq!(refused.errors.first().map(|e| e.code.as_str()), Some("InvalidInput"), "{refused:?}");
    assert_eq!(chain.updates(250), 0, "a refused approver's name changes nothing");
    let consent = InProcessConsent { approved_by: Some("Dana Approver".into()), plan_hash: Some(hash.clone()) };
    let done = chain.run(request("250", &PSA_STEPS, false), &consent).await;
    assert_eq!(done.status, "completed", "{done:?}");
    assert!(done.success, "{done:?}");
    assert_eq!(chain.active_contacts(250), 0, "every contact inactive in the PSA");
    assert_eq!(chain.active_configs(250), 0, "every configuration inactive in the PSA");
    let psa = chain.sandbox.psa("connectwise");
    let contact_updates: usize = psa.contact_ids_of(250).into_iter().map(|id| psa.contact_update_count(id)).sum();
    assert_eq!(contact_updates, contacts_before, "each active contact updated exactly once");
    // A configuration is updated for its status, and at most once more by the contact step
    // when it pointed at a deactivated contact (workflow 001's related records).
    assert!(psa.configuration_ids_of(250).into_iter().all(|id| psa.update_count(id) <= 2));
    let updates = chain.updates(250);

    // The audit trail links every step's operation to the chain's.
    let audit = chain.workflows().audit.clone();
    let parent = done.operation_id.clone().expect("the chain's operation");
    let children = audit.child_operations(&parent).await.unwrap();
    let workflows: BTreeSet<Workflow> = children.iter().map(|c| c.workflow).collect();
    assert_eq!(workflows, BTreeSet::from([Workflow::DeactivateContacts, Workflow::DeactivateConfigs]), "{children:?}");
    let step_ops: BTreeSet<String> = done.steps.iter().filter_map(|s| s.operation_id().map(str::to_string)).collect();
    let applied: BTreeSet<String> = children.iter().filter(|c| !c.dry_run).map(|c| c.operation_id.clone()).collect();
    assert_eq!(step_ops, applied, "the report names the children the trail holds");
    let detail = audit.operation(&parent).await.unwrap().expect("the parent operation");
    assert_eq!(detail.operation.workflow, Workflow::ClientOffboarding);

    // The summary note is on the chain's ticket, in the simulator.
    let ticket: i64 = done.ticket_id.as_deref().expect("a ticket").parse().unwrap();
    let view = chain.sandbox.psa("connectwise").ticket(ticket).expect("the ticket exists");
    let note = view.notes.iter().find(|n| n.contains("Client offboarding of")).expect("the summary note");
    assert!(note.contains("deactivate_configs") && note.contains(&parent), "{note}");
    assert!(!chain.sandbox.webhook_posts().is_empty(), "the notification was sent");
    // Every step succeeded: the ticket is closed in the simulator, after its summary note.
    assert!(view.closed, "the chain's ticket is closed after a fully successful run: {view:?}");
    assert!(done.ticket_closed, "{done:?}");
    assert!(note.contains("closes this ticket"), "{note}");

    // The plan approved before is not the plan now (nothing is left to change).
    let stale = chain.run(request("250", &PSA_STEPS, false), &consent).await;
    assert_eq!(stale.errors.first().map(|e| e.code.as_str()), Some("PlanChanged"), "{stale:?}");
    assert_eq!(chain.updates(250), updates, "a stale approval changes nothing");
}

/// A step that fails stops the chain: the later steps are not run, and the report and the
/// ticket say so. No approval needed here: the client's settings say so.
#[tokio::test]
async fn a_failing_step_stops_the_chain_and_the_rest_is_not_run() {
    let chain = Chain::start().await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    let configs_before = chain.active_configs(250);
    chain.sandbox.fail_route("PATCH", "company/contacts", 400);
    let report = chain.run(request("250", &PSA_STEPS, false), &InProcessConsent::default()).await;
    assert_eq!(report.status, "failed", "{report:?}");
    assert_eq!(report.not_run, vec![ChainStep::DeactivateConfigs], "{report:?}");
    assert_eq!(report.approved_by.as_deref(), Some("tech@msp.example"), "the initiator's request is the consent");
    assert_eq!(chain.active_configs(250), configs_before, "the configurations were not touched");
    let ticket: i64 = report.ticket_id.as_deref().unwrap().parse().unwrap();
    let notes = chain.sandbox.psa("connectwise").ticket(ticket).unwrap().notes;
    assert!(notes.iter().any(|n| n.contains("deactivate_configs: not run")), "{notes:?}");
    let view = chain.sandbox.psa("connectwise").ticket(ticket).unwrap();
    assert!(!view.closed, "a failing run leaves its ticket open");
    assert!(!report.ticket_closed, "{report:?}");
}

/// A close that fails (here: a configured status that is not a closed one) is reported,
/// recorded with the parent's last event, and undoes nothing: the steps' changes stand.
#[tokio::test]
async fn a_ticket_that_cannot_be_closed_is_reported_and_nothing_is_undone() {
    let chain = Chain::start_with(&[("OFFRAMP_CW_CLOSED_TICKET_STATUS", "Waiting")]).await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    let report = chain.run(request("250", &PSA_STEPS, false), &InProcessConsent::default()).await;
    assert_eq!(chain.active_contacts(250), 0, "the contacts stay inactive: {report:?}");
    assert_eq!(chain.active_configs(250), 0, "the configurations stay inactive: {report:?}");
    let close_error = report.errors.iter().find(|e| e.message.contains("closing ticket")).expect("reported");
    assert_eq!(close_error.code.as_str(), "TicketUpdateFailed", "{report:?}");
    assert!(!report.ticket_closed, "{report:?}");
    let ticket: i64 = report.ticket_id.as_deref().unwrap().parse().unwrap();
    assert!(!chain.sandbox.psa("connectwise").ticket(ticket).unwrap().closed, "the ticket is open in the simulator");
    let parent = report.operation_id.clone().unwrap();
    let detail = chain.workflows().audit.operation(&parent).await.unwrap().unwrap();
    let last = serde_json::to_string(&detail.events.last().unwrap()).unwrap();
    assert!(last.contains("closing ticket"), "the trail records the close failure: {last}");
}

/// The IT Glue step deletes the client's organization (after its export), bound to the
/// dry run's plan like the PSA steps.
#[tokio::test]
async fn the_itglue_step_deletes_the_organization_when_asked() {
    let chain = Chain::start().await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    let report = chain.run(request("260", &[ChainStep::DeleteItglueOrg], false), &InProcessConsent::default()).await;
    assert!(report.success, "{report:?}");
    let itglue = chain.sandbox.itglue();
    assert!(
        !itglue.organization_exists(9002) || itglue.marked_for_deletion(9002),
        "Adatum Travel's organization is gone"
    );
    assert_eq!(itglue.deletions_requested(), 1, "one deletion request");
}

/// Bad input is refused before anything is recorded or changed.
#[tokio::test]
async fn a_request_without_a_client_is_refused() {
    let chain = Chain::start().await;
    let mut bad = request("250", &PSA_STEPS, false);
    bad.client_id = None;
    let report = chain.run(bad, &InProcessConsent::default()).await;
    assert_eq!(report.errors[0].code.as_str(), "InvalidInput", "{report:?}");
    assert!(report.operation_id.is_none());
    assert_eq!(chain.updates(250), 0);
    let unknown = chain.run(request("99999", &PSA_STEPS, false), &InProcessConsent::default()).await;
    assert_eq!(unknown.errors[0].code.as_str(), "ClientNotFound", "{unknown:?}");

    // A step whose dry run refuses (Fabrikam is not offboarded) ends the chain's parent
    // operation refused in the trail, with nothing changed.
    let active = chain.run(request("100", &[ChainStep::DeactivateConfigs], true), &InProcessConsent::default()).await;
    assert_eq!(active.errors[0].code.as_str(), "ClientNotOffboarded", "{active:?}");
    let filter = offramp::domain::OperationFilter { client_id: Some("100".into()), psa: None, limit: 10 };
    let listed = chain.workflows().audit.list_operations(&filter).await.unwrap();
    let parent = listed.iter().find(|o| o.operation.workflow == Workflow::ClientOffboarding).expect("the parent");
    assert_eq!(parent.last_event, Some(offramp::domain::OperationEventKind::Refused), "{listed:?}");
    assert_eq!(chain.updates(100), 0);
}

/// The orchestrator's actions, driven as the state machine drives them (resolve, bind, each
/// step's Task with its `ResultSelector`, finalize), reach the same end as the in-process chain.
#[tokio::test]
async fn the_orchestrator_actions_run_the_chain_as_the_state_machine_does() {
    let chain = Chain::start().await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    let run = |event: Value| chain.services.handle(Function::Orchestrator, event, "lambda:orchestrator");
    let input = serde_json::to_value(request("250", &PSA_STEPS, false)).unwrap();
    let state =
        run(json!({"action": "resolve", "request": input, "execution_arn": "arn:aws:states:x:1:execution:m:e"})).await;
    assert!(state.error.is_none(), "{state}");
    assert_eq!(state["plan"]["approval_required"], false, "{state}");
    let mut state = run(json!({"action": "bind", "state": state.payload})).await.payload;
    let inputs: ChainInputs = serde_json::from_value(state["inputs"].clone()).expect("the inputs");
    for step in PSA_STEPS {
        let call: &StepCall = inputs.calls(step)[0];
        let answer = chain.services.handle(function_of(step), serde_json::to_value(call).unwrap(), "lambda:step").await;
        assert!(answer.error.is_none(), "{step}: {answer}");
        assert!(answer["continuation"].is_null(), "finished in one invocation: {answer}");
        state["results"][step.as_str()] = json!({ "result": answer.payload });
    }
    let report = run(json!({"action": "finalize", "state": state})).await;
    assert!(report.error.is_none(), "{report}");
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(chain.active_configs(250) + chain.active_contacts(250), 0);
}

// ---------------------------------------------------------------------------
// The state machine definition and the in-process chain do not drift apart
// ---------------------------------------------------------------------------

fn definition() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/statemachine/client-offboarding.asl.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every state reachable from `from` (following Next, Default, Choices and Catch).
fn reachable<'a>(states: &'a serde_json::Map<String, Value>, from: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from];
    while let Some(name) = todo.pop() {
        let state = &states[name];
        let mut next: Vec<&str> = ["Next", "Default"].iter().filter_map(|k| state[*k].as_str()).collect();
        for list in ["Choices", "Catch"] {
            next.extend(state[list].as_array().into_iter().flatten().filter_map(|c| c["Next"].as_str()));
        }
        for n in next {
            if seen.insert(n) {
                todo.push(n);
            }
        }
    }
    seen
}

/// The state of each stage: found by what it does (the function it invokes, the action or
/// the input path it passes), never by its name.
fn stage_states(states: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for (name, state) in states {
        let params = &state["Parameters"];
        let function = params["FunctionName"].as_str().unwrap_or_default();
        let stage = match state["Type"].as_str().unwrap_or_default() {
            "Wait" => Some("Delay".to_string()),
            "Map" => Some(format!(
                "Step({:?}) via {}",
                ChainStep::OffboardUsers,
                state["ItemsPath"].as_str().unwrap_or_default()
            )),
            "Task" if function == "${OrchestratorFunctionArn}" => {
                let action = params["Payload"]["action"].as_str().unwrap_or_default();
                Some(match action {
                    "resolve" => "Resolve".into(),
                    "request_approval" => "Approval".into(),
                    "bind" => "Bind".into(),
                    "finalize" => "Finalize".into(),
                    other => panic!("{name}: unknown orchestrator action {other}"),
                })
            }
            "Task" => Some(format!("Step via {function} {}", params["Payload.$"].as_str().unwrap_or_default())),
            _ => None,
        };
        if let Some(stage) = stage {
            assert!(found.insert(stage.clone(), name.clone()).is_none(), "two states for {stage}");
        }
    }
    found
}

fn expected_stage(stage: Stage) -> String {
    let function = |step: ChainStep| format!("${{{:?}FunctionArn}}", function_of(step));
    match stage {
        Stage::Resolve => "Resolve".into(),
        Stage::Approval => "Approval".into(),
        Stage::Bind => "Bind".into(),
        Stage::Delay => "Delay".into(),
        Stage::Finalize => "Finalize".into(),
        Stage::Step(ChainStep::OffboardUsers) => {
            format!("Step(OffboardUsers) via $.inputs.{}", ChainStep::OffboardUsers)
        }
        Stage::Step(step) => format!("Step via {} $.inputs.{step}", function(step)),
    }
}

/// Same stages, same order, same inputs: each in-process stage has exactly one state, each
/// stage's state reaches the next stage's and never an earlier one's, and every step Task
/// sends the very `ChainInputs` field the in-process chain sends.
#[test]
fn the_state_machine_and_the_in_process_chain_have_the_same_stages_in_the_same_order() {
    let definition = definition();
    let states = definition["States"].as_object().expect("States");
    let found = stage_states(states);
    let expected: Vec<String> = STAGES.iter().map(|s| expected_stage(*s)).collect();
    let found_names: BTreeSet<&String> = found.keys().collect();
    assert_eq!(found_names, expected.iter().collect(), "the definition's stages are the in-process chain's");
    for pair in expected.windows(2) {
        let (earlier, later) = (&found[&pair[0]], &found[&pair[1]]);
        assert!(reachable(states, earlier).contains(later.as_str()), "{earlier} must lead to {later}");
        assert!(!reachable(states, later).contains(earlier.as_str()), "{later} must not lead back to {earlier}");
    }
    // The Map runs as many leavers at once as the in-process chain.
    let map = &states[&found[&expected_stage(Stage::Step(ChainStep::OffboardUsers))]];
    assert_eq!(map["MaxConcurrency"], offramp::chain::LEAVERS_AT_ONCE, "the same number of leavers at once");
    // Every step payload is a `ChainInputs` field, by the same name.
    let inputs = serde_json::to_value(ChainInputs::default()).unwrap();
    for step in ChainStep::ALL {
        assert!(inputs.get(step.as_str()).is_some(), "ChainInputs has no field {step}");
    }
    // The Map's item Task sends a whole `StepCall`, field by field.
    let map = &states[&found[&expected_stage(Stage::Step(ChainStep::OffboardUsers))]];
    let item = &map["ItemProcessor"]["States"]["OffboardUser"]["Parameters"];
    assert_eq!(item["FunctionName"], format!("${{{:?}FunctionArn}}", function_of(ChainStep::OffboardUsers)));
    let sent: BTreeSet<String> =
        item["Payload"].as_object().unwrap().keys().map(|k| k.trim_end_matches(".$").to_string()).collect();
    let call = serde_json::to_value(StepCall::new("p", ChainStep::OffboardUsers, json!({}))).unwrap();
    let fields: BTreeSet<String> = call.as_object().unwrap().keys().cloned().collect();
    assert_eq!(sent, fields, "the Map item sends a StepCall");
}

/// The state machine's approval stage through the orchestrator: `request_approval` records
/// one approval with every run's plan hash and mails each approver; the page's decision (the
/// task's output) binds only when it names exactly those hashes.
#[tokio::test]
async fn the_approval_request_carries_every_runs_hash_and_binds_only_to_them() {
    use offramp::adapters::approvals_memory::InProcessCallback;
    use offramp::adapters::audit_sqlite::SqliteAuditStore;
    use offramp::approval::ApprovalConfig;
    use offramp::chain::{ChainApprovals, ChainState, Orchestrated, OrchestratorAction, orchestrate, plan_hashes};
    use offramp::ports::ApprovalStore;

    let chain = Chain::start().await;
    chain.set_global(offramp::workflows::org_settings::APPROVERS, "approver@msp.example").await;
    let store = SqliteAuditStore::open(&chain.dir.path().join("audit.sqlite")).unwrap();
    let callback = InProcessCallback::new();
    let config = ApprovalConfig {
        base_url: "https://approvals.msp.example".into(),
        default_approvers: Vec::new(),
        approver_must_differ: false,
    };
    let steps = InProcessSteps { services: &chain.services, invoked_by: "lambda:orchestrator".into() };
    let mut deps = chain_deps(&chain.services, &steps, None).unwrap();
    deps.approvals = Some(ChainApprovals { store: &store, callback: &callback, config: &config });
    let state = |o: Orchestrated| match o {
        Orchestrated::State(state) => state,
        Orchestrated::Report(report) => panic!("a state, not {report:?}"),
    };
    let request = Box::new(request("250", &PSA_STEPS, false));
    let resolved =
        state(orchestrate(&deps, OrchestratorAction::Resolve { request, execution_arn: None }).await.unwrap());
    let plan = resolved.plan.clone().unwrap();
    assert!(plan.approval_required);
    let mails_before = chain.sandbox.webhook_posts().len();
    let action = OrchestratorAction::RequestApproval {
        task_token: "token-from-the-state-machine".into(),
        state: resolved.clone(),
    };
    state(orchestrate(&deps, action).await.expect("approval requested"));
    assert!(chain.sandbox.webhook_posts().len() > mails_before, "the approver was told");
    let children = chain.workflows().audit.operation(&plan.parent_operation_id).await.unwrap().unwrap();
    assert!(children.events.iter().any(|e| e.kind.as_str() == "approval_requested"), "{:?}", children.events);
    let approval_id = children
        .events
        .iter()
        .find_map(|e| e.detail.get("approval_id").and_then(Value::as_str).map(str::to_string))
        .expect("the approval's id in the trail");
    let record = store.approval(&approval_id).await.unwrap().expect("the approval is stored");
    let stored: BTreeMap<String, String> = record.plans.iter().map(|p| (p.step.clone(), p.plan_hash.clone())).collect();
    assert_eq!(stored, plan_hashes(&plan), "the approval binds every run's hash");

    // The page's decision, as SendTaskSuccess hands it to the state machine.
    let decided = |hashes: &BTreeMap<String, String>| {
        let mut state: ChainState = (*resolved).clone();
        state.approval = Some(
            serde_json::from_value(json!({
                "approved": true, "approval_id": approval_id, "approved_by": "approver@msp.example (Dana)",
                "approved_at": "2026-12-06T23:00:00Z", "plan_hashes": hashes,
            }))
            .expect("the decision reads as the chain's approval"),
        );
        OrchestratorAction::Bind { state: Box::new(state) }
    };
    let bound = state(orchestrate(&deps, decided(&plan_hashes(&plan))).await.expect("bound"));
    assert!(bound.inputs.is_some());
    let mut tampered = plan_hashes(&plan);
    tampered.insert("deactivate_configs".into(), "0".repeat(64));
    let refused = orchestrate(&deps, decided(&tampered)).await.expect_err("another plan is not this one");
    assert_eq!(refused.code().as_str(), "PlanChanged");
    assert_eq!(chain.updates(250), 0, "nothing changed");
}
