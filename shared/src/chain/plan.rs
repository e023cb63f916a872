//! Resolve: the client, the parent operation, and every step's dry-run plan with its
//! `plan_hash`. Nothing is changed here; an approval binds to exactly these hashes
//! (docs/architecture.md#the-client-offboarding-chain).

use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};

use super::model::{APPROVAL_TIMEOUT_SECONDS, ChainPlan, LEAVERS_AT_ONCE, PlannedRun, chain_hash};
use super::request::{ChainStep, ClientOffboardingRequest};
use super::{ChainDeps, StepCall};
use crate::domain::{Company, OperationEventKind, OperationRecord, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::Recorder;
use crate::workflows::input;

/// Check the request, find the client, record the parent operation, and dry-run every step.
pub async fn resolve(deps: &ChainDeps<'_>, request: ClientOffboardingRequest) -> Result<ChainPlan, OfframpError> {
    let checked = Checked::from(&request)?;
    let company = client(deps, &request).await?;
    let approval_required = request.require_approval || super::settings::approval_required(deps, &company.id).await?;
    let mut plan = ChainPlan {
        parent_operation_id: uuid::Uuid::now_v7().to_string(),
        psa: deps.psa.kind().to_string(),
        client_id: company.id.clone(),
        client_name: company.name.clone(),
        dry_run: request.dry_run,
        approval_required,
        approval_timeout_seconds: APPROVAL_TIMEOUT_SECONDS,
        effective_at: request.effective_at,
        initiated_by: checked.initiated_by,
        on_behalf_of: checked.on_behalf_of,
        reason: checked.reason,
        ticket_id: None,
        steps: request.steps(),
        runs: Vec::new(),
        skipped: Vec::new(),
        plan_hash: String::new(),
    };
    record_parent(deps, &plan, &request).await?;
    if !plan.dry_run {
        plan.ticket_id = Some(super::ticket::open_or_reuse(deps, &plan).await?);
    }
    let leavers = match (request.all_licensed_users, request.steps().contains(&ChainStep::OffboardUsers)) {
        (true, true) => {
            leavers_or_refuse(deps, &plan, super::licensed::licensed_leavers(deps, &company.id).await).await?
        }
        _ => request.leavers.clone(),
    };
    for step in request.steps() {
        if let Err(error) = plan_step(deps, &mut plan, step, &leavers).await {
            // The parent operation ends here, refused: nothing was changed.
            let detail = json!({ "step": step, "code": error.code(), "message": error.to_string() });
            Recorder::new(deps.audit, &plan.parent_operation_id).event(OperationEventKind::Refused, detail).await?;
            return Err(error);
        }
    }
    plan.plan_hash = chain_hash(&plan.runs);
    let recorder = Recorder::new(deps.audit, &plan.parent_operation_id);
    recorder.event(OperationEventKind::Planned, json!({ "plan_hash": plan.plan_hash, "runs": plan.runs })).await?;
    Ok(plan)
}

/// The licensed users, or the parent operation ended refused (nothing was changed).
async fn leavers_or_refuse(
    deps: &ChainDeps<'_>,
    plan: &ChainPlan,
    listed: Result<Vec<String>, OfframpError>,
) -> Result<Vec<String>, OfframpError> {
    let error = match listed {
        Ok(leavers) => return Ok(leavers),
        Err(error) => error,
    };
    let detail = json!({ "step": ChainStep::OffboardUsers, "code": error.code(), "message": error.to_string() });
    Recorder::new(deps.audit, &plan.parent_operation_id).event(OperationEventKind::Refused, detail).await?;
    Err(error)
}

/// The request's free text, checked by the rule every workflow's input follows.
struct Checked {
    initiated_by: String,
    on_behalf_of: Option<String>,
    reason: Option<String>,
}

impl Checked {
    fn from(request: &ClientOffboardingRequest) -> Result<Self, OfframpError> {
        if request.client_id.is_some() == request.client_name.is_some() {
            return Err(OfframpError::invalid_input(
                "give exactly one of client_id and client_name; nothing was changed",
            ));
        }
        if request.all_licensed_users && !request.leavers.is_empty() {
            return Err(OfframpError::invalid_input(
                "give either leavers or all_licensed_users, not both; nothing was changed",
            ));
        }
        let initiated_by = input::text(input::INITIATED_BY, request.initiated_by.as_deref())?
            .ok_or_else(|| OfframpError::invalid_input("initiated_by is required (the entry point sets it)"))?;
        Ok(Self {
            initiated_by,
            on_behalf_of: input::text(ON_BEHALF_OF, request.on_behalf_of.as_deref())?,
            reason: input::text(input::REASON, request.reason.as_deref())?,
        })
    }
}

/// Who the caller says a run is for; recorded as a note, never as the initiator.
pub const ON_BEHALF_OF: input::TextField = input::TextField::new("on_behalf_of", 200);

async fn client(deps: &ChainDeps<'_>, request: &ClientOffboardingRequest) -> Result<Company, OfframpError> {
    if let Some(id) = &request.client_id {
        return deps.psa.company_by_id(id).await?.ok_or_else(|| {
            OfframpError::new(ErrorCode::ClientNotFound, format!("no company {id} in the PSA; nothing was changed"))
        });
    }
    let name = input::text(input::CLIENT_NAME, request.client_name.as_deref())?.unwrap_or_default();
    let mut found = deps.psa.companies_by_name(&name).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            Err(OfframpError::new(ErrorCode::ClientNotFound, format!("no company named '{name}'; nothing was changed")))
        }
        n => Err(OfframpError::new(
            ErrorCode::ClientAmbiguous,
            format!("{n} companies are named '{name}': give client_id instead; nothing was changed"),
        )),
    }
}

async fn record_parent(
    deps: &ChainDeps<'_>,
    plan: &ChainPlan,
    request: &ClientOffboardingRequest,
) -> Result<(), OfframpError> {
    let record = OperationRecord {
        operation_id: plan.parent_operation_id.clone(),
        workflow: Workflow::ClientOffboarding,
        psa: plan.psa.clone(),
        client_id: plan.client_id.clone(),
        client_name: plan.client_name.clone(),
        initiated_by: plan.initiated_by.clone(),
        reason: plan.reason.clone(),
        dry_run: plan.dry_run,
        plan_hash: None,
        created_at: Utc::now(),
        input: json!({ "request": request, "on_behalf_of": plan.on_behalf_of }),
        parent_operation_id: None,
    };
    Ok(Recorder::new(deps.audit, &plan.parent_operation_id).create(&record).await?)
}

/// Dry-run one step (each leaver, for `offboard_users`) and add its runs to the plan. A dry
/// run that fails ends the resolve: nothing has been changed, and the error says why.
/// Leavers are dry-run as many at once as the state machine's Map offboards them
/// ([`LEAVERS_AT_ONCE`]): a 100-seat client is planned in tens of seconds, not minutes;
/// `buffered` keeps the request's order, so the plan and its hash never depend on timing.
async fn plan_step(
    deps: &ChainDeps<'_>,
    plan: &mut ChainPlan,
    step: ChainStep,
    leavers: &[String],
) -> Result<(), OfframpError> {
    let targets: Vec<Option<String>> = match step {
        ChainStep::OffboardUsers if leavers.is_empty() => {
            plan.skipped.push((step, "no leavers named".into()));
            return Ok(());
        }
        ChainStep::OffboardUsers => leavers.iter().cloned().map(Some).collect(),
        _ => vec![None],
    };
    let requests: Vec<Value> =
        targets.iter().map(|leaver| super::bind::step_request(plan, step, leaver.as_deref())).collect();
    let parent = plan.parent_operation_id.as_str();
    let answers: Vec<_> = futures::stream::iter(requests.iter().map(|request| async move {
        let mut dry = request.clone();
        dry["dry_run"] = json!(true);
        // A leaver's dry run writes no note, so it need not read the chain's ticket, which
        // resolve opened or reused for this client a moment ago; the real run checks it
        // before its first note. One PSA request less per leaver (docs/reliability.md, "Headline").
        if step == ChainStep::OffboardUsers
            && let Some(fields) = dry.as_object_mut()
        {
            fields.remove("ticket_id");
        }
        deps.steps.run(step, &StepCall::new(parent, step, dry)).await
    }))
    .buffered(LEAVERS_AT_ONCE)
    .collect()
    .await;
    for ((leaver, request), answer) in targets.into_iter().zip(requests).zip(answers) {
        if let Some(error_type) = answer.error_type {
            let message = answer.result.pointer("/errors/0/message").and_then(Value::as_str).unwrap_or_default();
            let code =
                ErrorCode::ALL.iter().copied().find(|c| c.as_str() == error_type).unwrap_or(ErrorCode::InvalidInput);
            let whose = leaver.as_deref().map(|l| format!(" for {l}")).unwrap_or_default();
            return Err(OfframpError::new(
                code,
                format!("the dry run of {step}{whose} failed: {message}; nothing was changed"),
            ));
        }
        let plan_hash = answer.result.get("plan_hash").and_then(Value::as_str).map(str::to_string);
        plan.runs.push(PlannedRun { step, leaver, request, plan_hash, planned: answer.result });
    }
    Ok(())
}
