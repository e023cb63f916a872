//! Resuming an interrupted configuration deactivation. The engine checks the operation
//! may be continued and holds the client's lease; this decides, item by item, from the
//! trail and the PSA's current state what is left.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::execute::{self, Work, WorkAction};
use super::plan::ACTION_DEACTIVATE;
use super::report::{self, ConfigDeactivationReport, ItemResult};
use super::{Deps, Failure, Validated, WORKFLOW};
use crate::domain::{Company, ConfigState, Configuration, ItemKind, ItemOutcome, OperationDetail, OperationEventKind};
use crate::error::{ErrorCode, OfframpError};
use crate::operation::{self, Applied, Recorder, resume as engine, sort_key};
use crate::ports::{Progress, Psa};

pub(super) async fn resume(
    deps: &Deps<'_>,
    v: &Validated,
    operation_id: &str,
    break_lease: bool,
) -> Result<ConfigDeactivationReport, Failure> {
    let psa = deps.psa.kind().as_str();
    let detail = engine::load_resumable(deps.audit, WORKFLOW, psa, operation_id, deps.options.deadline).await?;
    let op = &detail.operation;
    let client = Company {
        id: op.client_id.clone(),
        name: op.client_name.clone(),
        identifier: None,
        status: None,
        inactive: None,
        categories: Vec::new(),
        contracts: None,
    };
    let fail = |error: OfframpError| Failure::at(error, &client, Some(operation_id));
    if v.client_id.as_ref().is_some_and(|id| *id != op.client_id)
        || v.client_name.as_ref().is_some_and(|n| !n.eq_ignore_ascii_case(&op.client_name))
    {
        return Err(fail(OfframpError::invalid_input(format!(
            "operation {operation_id} is for client {} ({}), not the client given",
            op.client_name, op.client_id
        ))));
    }
    let lease = operation::lease::target(deps.psa.kind().as_str(), &client.id);
    let work = continue_operation(deps, v, &detail, &client, break_lease);
    operation::with_lease(deps.audit, deps.options.lease, lease, operation_id, break_lease, work)
        .await
        .map_err(fail)?
        .map_err(fail)
}

/// Configurations read and decided at a time when resuming: one listing page on a PSA that
/// filters by id range, so a resumed invocation reads what it is about to change, not the
/// whole client (docs/reliability.md#runs-across-invocations).
const SEGMENT: usize = 1000;

async fn continue_operation(
    deps: &Deps<'_>,
    v: &Validated,
    detail: &OperationDetail,
    client: &Company,
    lease_broken: bool,
) -> Result<ConfigDeactivationReport, OfframpError> {
    let op = &detail.operation;
    let operation_id = op.operation_id.as_str();
    let mut warnings = vec![format!("Resumed operation {operation_id} (started by {}).", op.initiated_by)];
    let (done, pending) = recorded(detail)?;
    let mut reader = CurrentState { psa: deps.psa, company_id: &op.client_id, whole: None };

    // Completed, and every item already recorded: nothing to do, nothing to append.
    if engine::has_event(detail, OperationEventKind::Completed) && pending.is_empty() {
        warnings.extend(reader.final_check(detail, &done).await);
        warnings.push("The operation had already completed; nothing was changed.".into());
        let mut report = report::applied(client, operation_id, done, 0, None, warnings);
        report.plan_hash = op.plan_hash.clone();
        return Ok(report);
    }
    let detail_json = json!({ "resumed_by": v.initiated_by, "remaining": pending.len(), "lease_broken": lease_broken });
    Recorder::new(deps.audit, operation_id).event(OperationEventKind::Resumed, detail_json).await?;
    tracing::info!(recorded = done.len(), remaining = pending.len(), "resuming operation");
    let mut applied = apply_segments(deps, operation_id, pending, &mut reader, &mut warnings).await;
    if applied.stopped.is_none() {
        // The last invocation: one look at the whole client, for what others did to it.
        warnings.extend(reader.final_check(detail, &done).await);
    }
    applied.results.extend(done);
    execute::finish(deps, client, operation_id, op.plan_hash.clone(), applied, warnings).await
}

/// An item the trail has no outcome for: its state when planned, and whether its intent is
/// its latest record (the update may have reached the PSA).
struct Pending {
    before: Configuration,
    in_flight: bool,
    deactivate: bool,
}

/// Items already recorded (reported as they were, touched no more) and those left, in
/// the plan's order, from the trail alone.
fn recorded(detail: &OperationDetail) -> Result<(Vec<ItemResult>, Vec<Pending>), OfframpError> {
    let latest = engine::latest_changes(detail);
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for snapshot in detail.snapshots.iter().filter(|s| s.item_type == ItemKind::Configuration) {
        let before: Configuration = serde_json::from_value(snapshot.state.clone()).map_err(|e| {
            OfframpError::new(ErrorCode::AuditStoreError, format!("snapshot of {}: {e}", snapshot.item_id))
        })?;
        let previous = latest.get(&(ItemKind::Configuration, snapshot.item_id.as_str())).copied();
        match previous.map(|c| c.outcome) {
            Some(outcome @ (ItemOutcome::Changed | ItemOutcome::Skipped | ItemOutcome::Uncertain)) => {
                let after = previous.and_then(|c| c.after.clone()).and_then(|a| serde_json::from_value(a).ok());
                done.push(ItemResult { after, outcome, error: None, before });
            }
            _ => pending.push(Pending {
                in_flight: previous.is_some_and(engine::may_have_applied),
                deactivate: snapshot.planned_action == ACTION_DEACTIVATE,
                before,
            }),
        }
    }
    Ok((done, pending))
}

/// The items left, [`SEGMENT`] at a time: read their state now, decide, apply; stop at the
/// deadline (or on a failed reading: what was applied is recorded, the rest waits).
async fn apply_segments(
    deps: &Deps<'_>,
    operation_id: &str,
    pending: Vec<Pending>,
    reader: &mut CurrentState<'_>,
    warnings: &mut Vec<String>,
) -> Applied<ItemResult> {
    let progress = SegmentedProgress(deps.progress);
    deps.progress.start(pending.len() as u64);
    let segment_deps = Deps { psa: deps.psa, audit: deps.audit, progress: &progress, options: deps.options.clone() };
    let mut applied = Applied::nothing();
    let mut uncertain = 0;
    let mut segments = pending.chunks(SEGMENT);
    for segment in segments.by_ref() {
        // Checked before the reading too: a stopped invocation reads nothing more.
        if deps.options.deadline.reached() {
            applied.not_attempted += segment.len();
            applied.stopped = Some(deps.options.deadline.stop());
            break;
        }
        let current = match reader.read(segment).await {
            Ok(current) => current,
            Err(error) => {
                applied.not_attempted += segment.len();
                applied.stopped = Some(error);
                break;
            }
        };
        let work: Vec<Work> = segment.iter().map(|p| decide_pending(p, &current, warnings)).collect();
        uncertain += work.iter().filter(|w| w.action == WorkAction::Uncertain).count();
        let part = execute::execute(&segment_deps, operation_id, work).await;
        applied.results.extend(part.results);
        applied.not_attempted += part.not_attempted;
        if part.stopped.is_some() {
            applied.stopped = part.stopped;
            break;
        }
    }
    applied.not_attempted += segments.map(<[Pending]>::len).sum::<usize>();
    deps.progress.finish();
    if uncertain > 0 {
        warnings.push(format!(
            "{uncertain} configuration(s) were being updated when the run stopped and are inactive now: recorded as \
             uncertain. A rollback leaves them alone unless told to include uncertain items (--include-uncertain)."
        ));
    }
    applied
}

fn decide_pending(p: &Pending, current: &BTreeMap<String, Configuration>, warnings: &mut Vec<String>) -> Work {
    let action = if p.deactivate {
        decide(&p.before, current.get(&p.before.id), p.in_flight, warnings)
    } else {
        WorkAction::Skip
    };
    Work { before: p.before.clone(), action }
}

/// The client's configurations as the PSA has them now: by id range where the PSA filters
/// that way, else one listing of the whole client, kept for the invocation.
struct CurrentState<'a> {
    psa: &'a dyn Psa,
    company_id: &'a str,
    whole: Option<BTreeMap<String, Configuration>>,
}

impl CurrentState<'_> {
    async fn read(&mut self, segment: &[Pending]) -> Result<Cow<'_, BTreeMap<String, Configuration>>, OfframpError> {
        let ids = || segment.iter().map(|p| p.before.id.as_str());
        let (Some(first), Some(last)) = (ids().min_by_key(|id| sort_key(id)), ids().max_by_key(|id| sort_key(id)))
        else {
            return Ok(Cow::Owned(BTreeMap::new()));
        };
        if self.whole.is_none()
            && let Some(listed) = self.psa.list_configurations_between(self.company_id, first, last).await
        {
            return Ok(Cow::Owned(listed?.into_iter().map(|c| (c.id.clone(), c)).collect()));
        }
        Ok(Cow::Borrowed(self.whole().await?))
    }

    async fn whole(&mut self) -> Result<&BTreeMap<String, Configuration>, OfframpError> {
        if self.whole.is_none() {
            let listed = self.psa.list_configurations(self.company_id, true).await?;
            self.whole = Some(listed.into_iter().map(|c| (c.id.clone(), c)).collect());
        }
        Ok(self.whole.as_ref().expect("just listed"))
    }

    /// Warnings about the whole client: configurations this operation deactivated that are
    /// active again, and configurations that appeared since it started. A failed listing
    /// is a warning, not a failure: every change is already recorded.
    async fn final_check(&mut self, detail: &OperationDetail, done: &[ItemResult]) -> Vec<String> {
        self.whole = None; // fresh: after this invocation's changes
        let current = match self.whole().await {
            Ok(current) => current,
            Err(error) => return vec![format!("Could not list the client's configurations to check them: {error}")],
        };
        let mut warnings: Vec<String> = done
            .iter()
            .filter(|r| r.outcome == ItemOutcome::Changed)
            .filter_map(|r| reactivated(&r.before, current.get(&r.before.id)))
            .collect();
        warnings.extend(appeared(detail, current));
        warnings
    }
}

/// The caller's progress across segments: started and finished once, by the caller.
struct SegmentedProgress<'a>(&'a dyn Progress);

impl Progress for SegmentedProgress<'_> {
    fn start(&self, _total: u64) {}
    fn item_done(&self) {
        self.0.item_done();
    }
    fn finish(&self) {}
}

/// A configuration this operation deactivated that is active again: someone re-activated it.
fn reactivated(before: &Configuration, now: Option<&Configuration>) -> Option<String> {
    let now = now.filter(|now| now.status.state != ConfigState::Inactive)?;
    Some(format!(
        "Configuration {} ({}) was deactivated by this operation and is '{}' again: someone re-activated it; left alone.",
        before.id, before.name, now.status.name
    ))
}

/// An item not recorded as done, decided from the PSA's state now. `in_flight`: its
/// intent is its latest record (the update may have reached the PSA).
fn decide(
    before: &Configuration,
    now: Option<&Configuration>,
    in_flight: bool,
    warnings: &mut Vec<String>,
) -> WorkAction {
    let (id, name) = (&before.id, &before.name);
    match now {
        None => {
            warnings.push(format!("Configuration {id} ({name}) no longer exists in the PSA; left alone."));
            WorkAction::Skip
        }
        Some(now) if now.status.state == ConfigState::Inactive && in_flight => WorkAction::Uncertain,
        Some(now) if now.status.state == ConfigState::Inactive => {
            warnings.push(format!(
                "Configuration {id} ({name}) was set to '{}' outside this operation before it got to it; left alone, \
                 and not recorded as this operation's change.",
                now.status.name
            ));
            WorkAction::Skip
        }
        Some(now) if now.status.state == before.status.state && now.status.id == before.status.id => {
            WorkAction::Deactivate
        }
        Some(now) => {
            warnings.push(format!(
                "Configuration {id} ({name}) changed since the operation started ('{}' → '{}'); left alone.",
                before.status.name, now.status.name
            ));
            WorkAction::Skip
        }
    }
}

/// Configurations that appeared since the operation started are not part of it.
fn appeared(detail: &OperationDetail, current: &BTreeMap<String, Configuration>) -> Option<String> {
    let include_archived = detail.operation.input.get("include_archived").and_then(|v| v.as_bool()).unwrap_or(false);
    let known: HashSet<&str> = detail.snapshots.iter().map(|s| s.item_id.as_str()).collect();
    let appeared = current
        .values()
        .filter(|c| !known.contains(c.id.as_str()))
        .filter(|c| c.status.state == ConfigState::Active || include_archived)
        .count();
    (appeared > 0).then(|| {
        format!(
            "{appeared} configuration(s) appeared since the operation started; they are not part of it. Start a new run to include them."
        )
    })
}
