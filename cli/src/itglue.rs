//! `offramp itglue delete` (seed 002).

use std::io::IsTerminal;

use offramp::app;
use offramp::config::ConfigSource;
use offramp::error::{ErrorCode, OfframpError};
use offramp::workflows::delete_itglue_org::{
    DeleteOrgDeps, DeleteOrgOptions, DeleteOrgReport, DeleteOrgRequest, delete_itglue_org,
};

use crate::{ItglueDeleteArgs, default_user};

pub async fn delete(source: &ConfigSource, args: ItglueDeleteArgs) -> Result<i32, OfframpError> {
    let services = app::build(source).await?;
    let docs = services.docs.as_deref().ok_or_else(|| {
        OfframpError::configuration("IT Glue is not configured: set ITGLUE_API_KEY (and ITGLUE_REGION or ITGLUE_URL)")
    })?;
    let deps = DeleteOrgDeps {
        docs,
        audit: services.audit.as_ref(),
        psa: Some(services.psa.as_ref()),
        options: DeleteOrgOptions::from_settings(&services.settings),
    };
    let request = DeleteOrgRequest {
        org_id: args.org_id.clone(),
        org_name: args.org_name.clone(),
        confirm_delete: args.confirm_delete,
        dry_run: args.dry_run,
        force_delete: args.force_delete,
        reason: args.reason.clone(),
        initiated_by: Some(args.initiated_by.clone().unwrap_or_else(default_user)),
        force_without_export: args.force_without_export,
        ..DeleteOrgRequest::default()
    };
    // On a terminal a real deletion is previewed and confirmed by typing the organization's
    // name: IT Glue deletions cannot be undone.
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if interactive && args.confirm_delete && !args.dry_run && !args.yes {
        let preview = delete_itglue_org(&deps, DeleteOrgRequest { dry_run: true, ..request.clone() }).await;
        print(&preview);
        if !preview.success || preview.dependency_check.as_ref().is_some_and(|d| d.blocked) {
            return Ok(exit_code(&preview));
        }
        let name = preview.org_name.clone().unwrap_or_default();
        eprint!("Type the organization's name ({name}) to delete it: ");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if line.trim() != name {
            eprintln!("Not confirmed; nothing was deleted.");
            return Ok(ErrorCode::ConfirmationRequired.exit_code());
        }
    }
    let report = delete_itglue_org(&deps, request).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print(&report);
    }
    Ok(exit_code(&report))
}

fn exit_code(report: &DeleteOrgReport) -> i32 {
    if report.success { 0 } else { report.primary_error().map_or(1, ErrorCode::exit_code) }
}

fn print(report: &DeleteOrgReport) {
    eprintln!(
        "{} (id {}): {}",
        report.org_name.as_deref().unwrap_or("?"),
        report.org_id.as_deref().unwrap_or("?"),
        report.status.as_deref().unwrap_or(if report.success { "done" } else { "failed" })
    );
    if let Some(check) = &report.dependency_check {
        eprintln!(
            "  dependents: {} configurations, {} documents, {} flexible assets, {} passwords, {} contacts, {} locations{}",
            check.configs_found,
            check.documents_found,
            check.assets_found,
            check.passwords_found,
            check.contacts_found,
            check.locations_found,
            if check.blocked { " — BLOCKED" } else { "" }
        );
    }
    if let Some(export) = &report.export {
        eprintln!("  export {}: {} {}", export.id, export.status, export.download_url.as_deref().unwrap_or(""));
    }
    eprintln!("  deleted: {}", report.deleted);
    if let Some(id) = &report.operation_id {
        eprintln!("  operation: {id}");
    }
    for warning in &report.warnings {
        eprintln!("  warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("  error [{}]: {}", error.code, error.message);
    }
}
