//! A confirmed deletion, under the organization's lease, once the engine has written its
//! header, snapshot and `started`: the export, its copy in the archive (the only way back:
//! IT Glue's link expires), the deletion request, and the poll until IT Glue has carried it
//! out. IT Glue cannot undo a deletion, so once
//! it is requested the report says so whatever the trail does afterwards.

use serde_json::json;

use super::plan::Plan;
use super::report::DeleteOrgReport;
use super::{DeleteOrgDeps, doc_error};
use crate::domain::{
    self, ArchivedExport, Export, ExportObject, ItemChange, ItemKind, ItemOutcome, OperationEventKind, OperationRecord,
    Organization, RunStatus,
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
    let archived = match secure_export(deps, org, &operation_id, force_without_export, report).await {
        Ok(archived) => archived,
        Err(e) => {
            recorder.event(OperationEventKind::Failed, json!({ "code": e.code(), "message": e.to_string() })).await?;
            report.status = Some(RunStatus::Blocked);
            return Err(e);
        }
    };
    // The trail keeps where the copy is (bucket, key, version, digest), never IT Glue's link.
    if let (Some(archived), Some(export)) = (&archived, &report.export) {
        let after = json!({ "export_id": export.id, "status": export.status, "archive": archived });
        deps.audit.put_changes(&[change(&operation_id, ItemKind::ItglueExport, &export.id, &org.name, after)]).await?;
    }
    report.archive = archived.clone();
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
    let completed = json!({ "deleted": gone, "archive": archived, "force_without_export": archived.is_none() });
    if let Err(e) = recorder.event(OperationEventKind::Completed, completed).await {
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

/// The export, made and copied to the archive. `Ok(None)`: it could not be, and the
/// deletion goes ahead anyway because `force_without_export` says so (a warning says what
/// failed); without that flag, what failed is a `DeletionBlocked` and nothing is deleted.
async fn secure_export(
    deps: &DeleteOrgDeps<'_>,
    org: &Organization,
    operation_id: &str,
    force_without_export: bool,
    report: &mut DeleteOrgReport,
) -> Result<Option<ArchivedExport>, OfframpError> {
    let outcome = match wait_for_export(deps, org, report).await {
        Ok(export) => archive_export(deps, org, operation_id, &export).await,
        Err(why) => Err(why),
    };
    match outcome {
        Ok(archived) => Ok(Some(archived)),
        Err(why) if force_without_export => {
            report.warnings.push(format!("{why}; deleting anyway (force_without_export): this cannot be undone"));
            Ok(None)
        }
        Err(why) => Err(OfframpError::new(
            ErrorCode::DeletionBlocked,
            format!(
                "{why}; nothing was deleted. The archived export is the only way back after a deletion \
                 (force_without_export to delete without one)"
            ),
        )),
    }
}

/// Download the finished export from IT Glue's link (bounded) and store it in the archive.
/// The error says what failed, never the link.
async fn archive_export(
    deps: &DeleteOrgDeps<'_>,
    org: &Organization,
    operation_id: &str,
    export: &Export,
) -> Result<ArchivedExport, String> {
    let archive = deps.archive.ok_or_else(|| {
        format!(
            "No export archive is configured for the export {} of {} (OFFRAMP_EXPORT_BUCKET; OFFRAMP_EXPORT_DIR outside \
             Lambda)",
            export.id, org.name
        )
    })?;
    let bytes = deps
        .docs
        .download_export(export, deps.options.export_max_bytes)
        .await
        .map_err(|e| format!("The export {} of {} could not be downloaded: {e}", export.id, org.name))?;
    if bytes.is_empty() {
        return Err(format!("The export {} of {} downloaded empty", export.id, org.name));
    }
    let object = ExportObject {
        organization_id: org.id.clone(),
        export_id: export.id.clone(),
        operation_id: operation_id.to_string(),
        bytes,
    };
    let archived = archive
        .store(&object)
        .await
        .map_err(|e| format!("The export {} of {} could not be copied to the archive: {e}", export.id, org.name))?;
    tracing::info!(org_id = %org.id, key = %archived.key, size = archived.size, "export archived");
    Ok(archived)
}

/// Request the export and wait until it is done; `Err` says why there is none.
async fn wait_for_export(
    deps: &DeleteOrgDeps<'_>,
    org: &Organization,
    report: &mut DeleteOrgReport,
) -> Result<Export, String> {
    let mut export = deps
        .docs
        .request_export(&org.id)
        .await
        .map_err(|e| format!("The export of {} could not be requested: {e}", org.name))?;
    let deadline = tokio::time::Instant::now() + deps.options.export_wait;
    loop {
        // The report never holds the link, not even in memory (idempotent replays compare).
        report.export = Some(Export { download_url: None, ..export.clone() });
        if export.is_done() {
            return Ok(export);
        }
        if export.has_failed() {
            return Err(format!("The export {} of {} failed ({})", export.id, org.name, export.status));
        }
        if tokio::time::Instant::now() >= deadline {
            let waited = deps.options.export_wait.as_secs();
            return Err(format!(
                "The export {} of {} was not ready after {waited} s (status {})",
                export.id, org.name, export.status
            ));
        }
        tokio::time::sleep(deps.options.poll_interval).await;
        export = deps
            .docs
            .export(&export.id)
            .await
            .map_err(|e| format!("The export of {} could not be checked: {e}", org.name))?;
    }
}
