//! The client-offboarding chain (docs/architecture.md#the-client-offboarding-chain): in
//! process on the ConnectWise sandbox, through the same step events the state machine
//! sends, and the state machine definition itself kept equal to the in-process stages.
//! Effects are counted in the simulators; the chain's own report is only cross-checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use offramp::chain::{ChainInputs, ChainStep, InProcessConsent, STAGES, Stage, StepCall};
use offramp::domain::Workflow;
use offramp::entry::{Function, InProcessSteps, chain_deps, function_of};
use offramp::workflows::org_settings::CHAIN_REQUIRE_APPROVAL;
use offramp_tests::chain::{Chain, request};
use serde_json::{Value, json};

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
            "Task" => Some(format!("Step via {function} {}", step_input(name, &params["Payload"]))),
            _ => None,
        };
        if let Some(stage) = stage {
            assert!(found.insert(stage.clone(), name.clone()).is_none(), "two states for {stage}");
        }
    }
    found
}

/// The fields of a `StepCall` as a Task sends them, the execution included.
fn step_call_fields() -> BTreeSet<String> {
    let mut call = StepCall::new("p", ChainStep::OffboardUsers, json!({}));
    call.execution_arn = Some("arn:aws:states:x:1:execution:m:e".into());
    serde_json::to_value(call).unwrap().as_object().unwrap().keys().cloned().collect()
}

/// The `ChainInputs` path a step Task sends: its payload is that `StepCall`, field by field
/// under one path, with the execution (`$$.Execution.Id`) as `execution_arn`.
fn step_input(name: &str, payload: &Value) -> String {
    let fields = payload.as_object().unwrap_or_else(|| panic!("{name}: a step's payload names its fields"));
    assert_eq!(fields.get("execution_arn.$"), Some(&json!("$$.Execution.Id")), "{name}: the execution is sent");
    let sent: BTreeSet<String> = fields.keys().map(|k| k.trim_end_matches(".$").to_string()).collect();
    assert_eq!(sent, step_call_fields(), "{name} sends a StepCall");
    let input = fields["chain_step.$"].as_str().and_then(|p| p.strip_suffix(".chain_step")).unwrap_or_default();
    for (key, path) in fields.iter().filter(|(k, _)| k.as_str() != "execution_arn.$") {
        assert_eq!(path.as_str(), Some(format!("{input}.{}", key.trim_end_matches(".$")).as_str()), "{name}: {key}");
    }
    input.to_string()
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
    assert_eq!(sent, step_call_fields(), "the Map item sends a StepCall");
    assert_eq!(item["Payload"]["execution_arn.$"], "$$.Execution.Id", "and the execution, as its principal");
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

// ---------------------------------------------------------------------------
// Who the state machine's runs are by, an API-started chain's status, and a rejection
// ---------------------------------------------------------------------------

/// The ARN of the execution the API starts for `operation_id` (it names it `api-<id>`).
fn api_execution(operation_id: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:client-offboarding:api-{operation_id}")
}

/// The API's answer (status, body) to `event`, on the chain's own trail.
async fn call_api(chain: &Chain, starter: &offramp::ports::MemoryChainStarter, event: Value) -> (u16, Value) {
    let invoker = offramp::ports::MemoryWorkflowInvoker::default();
    let deps =
        offramp::entry::api::ApiDeps { audit: chain.workflows().audit.as_ref(), invoker: &invoker, chain: starter };
    let answer = offramp::entry::api::api_event(&deps, event).await;
    let body = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    (answer["statusCode"].as_u64().unwrap() as u16, body)
}

fn api_sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/api").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `POST /workflows/client-offboarding` with `body`, signed by the samples' IAM user.
fn api_post(body: &Value) -> Value {
    let mut event = api_sample("start-client-offboarding.json");
    event["body"] = json!(body.to_string());
    event
}

/// `GET /operations/{id}`.
fn api_get(id: &str) -> Value {
    let mut event = api_sample("operation-status.json");
    event["pathParameters"]["id"] = json!(id);
    event
}

/// The API starts the chain (the starter stubbed); the orchestrator's actions and each step's
/// Task run it as the state machine does, each event as the definition builds it (the step
/// call with `execution_arn`); then `GET /operations/{id}` answers the chain's final status
/// and report. Every child run, dry runs included, is recorded as the execution's.
#[tokio::test]
async fn an_api_started_chain_is_finished_for_get_and_its_runs_are_the_executions() {
    let chain = Chain::start().await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    let starter = offramp::ports::MemoryChainStarter::default();
    let body = json!({"client_id": "250", "steps": PSA_STEPS, "reason": "Contract ended"});
    let (status, accepted) = call_api(&chain, &starter, api_post(&body)).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["operation_id"].as_str().unwrap().to_string();
    let execution = api_execution(&id);
    let request = starter.started()[&format!("api-{id}")].clone();

    let run = |event: Value| chain.services.handle(Function::Orchestrator, event, "lambda:orchestrator");
    let state = run(json!({"action": "resolve", "request": request, "execution_arn": execution})).await;
    assert!(state.error.is_none(), "{state}");
    let mut state = run(json!({"action": "bind", "state": state.payload})).await.payload;
    let inputs: ChainInputs = serde_json::from_value(state["inputs"].clone()).unwrap();
    for step in PSA_STEPS {
        let mut event = serde_json::to_value(inputs.calls(step)[0]).unwrap();
        event["execution_arn"] = json!(execution);
        let answer = chain.services.handle(function_of(step), event, "lambda:step").await;
        assert!(answer.error.is_none(), "{step}: {answer}");
        state["results"][step.as_str()] = json!({ "result": answer.payload });
    }
    assert_eq!(call_api(&chain, &starter, api_get(&id)).await.1["status"], "accepted", "not finished yet");
    let report = run(json!({"action": "finalize", "state": state, "execution_arn": execution})).await;
    assert_eq!((report.error.as_ref(), report["status"].as_str()), (None, Some("completed")), "{report}");

    let (status, answer) = call_api(&chain, &starter, api_get(&id)).await;
    assert_eq!((status, answer["status"].as_str(), answer["finished"].as_bool()), (200, Some("completed"), Some(true)));
    assert_eq!(answer["report"], report.payload, "the chain's report, whole: {answer}");
    assert_eq!(chain.active_configs(250) + chain.active_contacts(250), 0);

    // Every child run (the dry runs of resolve and the real runs) is the execution's.
    let audit = chain.workflows().audit.clone();
    let parent = report["operation_id"].as_str().unwrap();
    let children = audit.child_operations(parent).await.unwrap();
    assert_eq!(children.len(), 4, "two dry runs, two runs: {children:?}");
    for child in children {
        assert!(child.initiated_by.starts_with(&format!("states:{execution} (on behalf of iam:")), "{child:?}");
    }
}

/// A rejected or expired approval (the approval task failed by the page's `SendTaskFailure`,
/// or by its own timeout) ends the chain `rejected`: Finalize answers, with no Lambda error,
/// so the execution ends through `NotApproved` and the ExecutionsFailed alarm does not count
/// it; the parent operation records it and nothing is changed. A failure of the approval
/// request itself, and of a bound step, still ends failed, with the Lambda error.
#[tokio::test]
async fn a_rejected_or_expired_approval_ends_the_chain_rejected_not_failed() {
    let chain = Chain::start().await;
    chain.set_global(CHAIN_REQUIRE_APPROVAL, "false").await;
    let run = |event: Value| chain.services.handle(Function::Orchestrator, event, "lambda:orchestrator");
    let mut asked = request("250", &PSA_STEPS, false);
    asked.require_approval = true;
    let resolved = run(json!({"action": "resolve", "request": asked})).await;
    assert_eq!(resolved["plan"]["approval_required"], true, "{resolved}");
    let parent = resolved["plan"]["parent_operation_id"].as_str().unwrap().to_string();
    let cases = [
        (
            "ApprovalRejected",
            "rejected by approver@msp.example (Dana) at 2026-12-06T23:00:00Z",
            Some("ApprovalRejected"),
        ),
        ("ApprovalExpired", "the approval expired at 2026-12-07T23:00:00Z", Some("ApprovalExpired")),
        ("States.Timeout", "", Some("ApprovalExpired")),
        ("ConfigurationError", r#"{"errorMessage": "{\"message\": \"no approvers\"}"}"#, None),
    ];
    for (error, cause, decided) in cases {
        let mut state = resolved.payload.clone();
        state["failure"] = json!({"Error": error, "Cause": cause});
        let report = run(json!({"action": "finalize", "state": state})).await;
        assert_eq!(report["success"], false, "{report}");
        let last = chain.workflows().audit.operation(&parent).await.unwrap().unwrap().last_event().cloned().unwrap();
        assert_eq!(last.kind.as_str(), "refused", "recorded on the parent operation");
        match decided {
            Some(code) => {
                assert_eq!(
                    (report.error_type(), report["status"].as_str()),
                    (None, Some("rejected")),
                    "{error}: {report}"
                );
                assert_eq!(report["errors"][0]["code"], code, "{report}");
                assert_eq!(last.detail["status"], "rejected", "{last:?}");
            }
            None => {
                assert_eq!((report.error_type(), report["status"].as_str()), (Some(error), Some("failed")), "{report}");
                assert_eq!(last.detail["status"], "failed", "{last:?}");
            }
        }
    }
    assert_eq!(chain.updates(250), 0, "nothing was changed");

    // A bound step that fails is a failure of the chain.
    let state = run(json!({"action": "resolve", "request": request("250", &PSA_STEPS, false)})).await;
    let mut state = run(json!({"action": "bind", "state": state.payload})).await.payload;
    state["failure"] = json!({"Error": "PSAConnectionError", "Cause": r#"{"errorMessage": "the PSA is down"}"#});
    let report = run(json!({"action": "finalize", "state": state})).await;
    assert_eq!((report.error_type(), report["status"].as_str()), (Some("PSAConnectionError"), Some("failed")));
}
