//! A confirmed deletion, under the organization's lease, once the engine has written its
//! header, snapshot and `started`: the export (the only way back), the deletion request,
//! and the poll until IT Glue has carried it out. IT Glue cannot undo a deletion, so once
//! it is requested the report says so whatever the trail does afterwards.

use serde_json::json;

use super::plan::Plan;
use super::report::DeleteOrgReport;
use super::{DeleteOrgDeps, doc_error};
use crate::domain::{
    self, Export, ItemChange, ItemKind, ItemOutcome, OperationEventKind, OperationRecord, Organization, RunStatus,
};
use crate::error::{DocError, ErrorCode, OfframpError};
use crate::operation::Recorder;

fn change(operation_id: &str, item_type: ItemKind, id: &str, name: &str, after: serde_json::Value) -> ItemChange {
    ItemChange {
        operation_id: operation_id.to_string(),
        change_id: uuid::Uuid::now_v7().to_string(),
        item_type,
        item_id: id.to_string(),
        item_name: name.to_string(),
        outcome: ItemOutcome::Changed,
        before: serde_json::Value::Null,
        after: Some(after),
        error_code: None,
        error_message: None,
        at: domain::now(),
    }
}

/// Apply an approved plan, once the engine has written its header, the organization's
/// snapshot and `started`. Runs under the organization's lease.
pub(super) async fn delete(
    deps: &DeleteOrgDeps<'_>,
    record: OperationRecord,
    plan: Plan,
    force_without_export: bool,
    report: &mut DeleteOrgReport,
) -> Result<(), OfframpError> {
    let operation_id = record.operation_id.clone();
    let recorder = Recorder::new(deps.audit, &operation_id);
    report.operation_id = Some(operation_id.clone());
    let org = &plan.org;
    let export = match wait_for_export(deps, org, force_without_export, report).await {
        Ok(export) => export,
        Err(e) => {
            recorder.event(OperationEventKind::Failed, json!({ "code": e.code(), "message": e.to_string() })).await?;
            report.status = Some(RunStatus::Blocked);
            return Err(e);
        }
    };
    if let Some(export) = &export {
        let record = change(&operation_id, ItemKind::ItglueExport, &export.id, &org.name, json!(export));
        deps.audit.put_changes(&[record]).await?;
    }
    report.export = export.clone();
    if let Err(e) = send_deletion(deps, org, report).await {
        recorder.event(OperationEventKind::Failed, json!({ "code": e.code(), "message": e.to_string() })).await?;
        return Err(e);
    }
    // From here on the deletion is a fact: an audit write that fails is reported beside it,
    // never instead of it.
    report.success = true;
    report.status = Some(RunStatus::PendingDeletion);
    tracing::info!(org_id = %org.id, "deletion requested");
    let requested = json!({ "deletion_requested": true });
    if let Err(e) = deps
        .audit
        .put_changes(&[change(&operation_id, ItemKind::ItglueOrganization, &org.id, &org.name, requested)])
        .await
    {
        report.audit_failed(org, e.into());
    }
    let gone = await_deletion(deps, org, report).await;
    if let Err(e) = recorder.event(OperationEventKind::Completed, json!({ "deleted": gone, "export": export })).await {
        report.audit_failed(org, e.into());
    }
    Ok(())
}

/// Send the deletion. IT Glue refusing this organization (422: it cannot be deleted) is
/// a block by the platform's own policy, not a connection problem.
async fn send_deletion(
    deps: &DeleteOrgDeps<'_>,
    org: &Organization,
    report: &mut DeleteOrgReport,
) -> Result<(), OfframpError> {
    match deps.docs.delete_organization(&org.id).await {
        Ok(()) => Ok(()),
        // Gone already: a retried request whose first attempt went through, or someone
        // deleted it meanwhile. The poll that follows confirms it.
        Err(DocError::NotFound { .. }) => {
            report.warnings.push(format!("IT Glue no longer knew {} when the deletion was sent", org.name));
            Ok(())
        }
        Err(e @ DocError::Rejected { .. }) => Err(OfframpError::new(
            ErrorCode::DeletionBlocked,
            format!("IT Glue refused to delete {}: {e}; nothing was deleted", org.name),
        )),
        Err(other) => Err(doc_error(other)),
    }
}

/// Deletion is asynchronous on IT Glue: poll until the organization is gone or time is up.
async fn await_deletion(deps: &DeleteOrgDeps<'_>, org: &Organization, report: &mut DeleteOrgReport) -> bool {
    let deadline = tokio::time::Instant::now() + deps.options.deletion_wait;
    let gone = loop {
        match deps.docs.organization_by_id(&org.id).await {
            Ok(None) => break true,
            Ok(Some(_)) => {}
            Err(e) => report.warnings.push(format!("Could not check the deletion: {e}")),
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(deps.options.poll_interval).await;
    };
    report.deleted = gone;
    report.status = Some(if gone { RunStatus::Deleted } else { RunStatus::PendingDeletion });
    if !gone {
        report.warnings.push(format!(
            "IT Glue accepted the deletion but {} is still visible after {} s: deletion is asynchronous on IT Glue. \
             Check again later.",
            org.name,
            deps.options.deletion_wait.as_secs()
        ));
    }
    gone
}

/// Request the export and wait for it. `Ok(None)`: no export, deletion forced anyway.
async fn wait_for_export(
    deps: &DeleteOrgDeps<'_>,
    org: &Organization,
    force_without_export: bool,
    report: &mut DeleteOrgReport,
) -> Result<Option<Export>, OfframpError> {
    let fail = |why: String, report: &mut DeleteOrgReport| {
        if force_without_export {
            report.warnings.push(format!("{why}; deleting anyway (force_without_export): this cannot be undone"));
            Ok(None)
        } else {
            Err(OfframpError::new(
                ErrorCode::DeletionBlocked,
                format!(
                    "{why}; nothing was deleted. The export is the only way back after a deletion \
                     (force_without_export to delete without one)"
                ),
            ))
        }
    };
    let mut export = match deps.docs.request_export(&org.id).await {
        Ok(export) => export,
        Err(e) => return fail(format!("The export of {} could not be requested: {e}", org.name), report),
    };
    let deadline = tokio::time::Instant::now() + deps.options.export_wait;
    loop {
        if export.is_done() {
            report.export = Some(export.clone());
            return Ok(Some(export));
        }
        report.export = Some(export.clone());
        if export.has_failed() {
            return fail(format!("The export {} of {} failed ({})", export.id, org.name, export.status), report);
        }
        if tokio::time::Instant::now() >= deadline {
            let waited = deps.options.export_wait.as_secs();
            let why = format!(
                "The export {} of {} was not ready after {waited} s (status {})",
                export.id, org.name, export.status
            );
            return fail(why, report);
        }
        tokio::time::sleep(deps.options.poll_interval).await;
        export = match deps.docs.export(&export.id).await {
            Ok(export) => export,
            Err(e) => return fail(format!("The export of {} could not be checked: {e}", org.name), report),
        };
    }
}
