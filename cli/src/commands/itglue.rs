//! `offramp itglue delete` (workflow 002, docs/workflows.md#002-it-glue-organization-deletion).

use clap::{Args, Subcommand};
use offramp::app;
use offramp::config::ConfigSource;
use offramp::error::{ErrorCode, OfframpError};
use offramp::workflows::delete_itglue_org::{DeleteOrgDeps, DeleteOrgReport, DeleteOrgRequest, delete_itglue_org};

use super::{initiated_by, print_json};
use crate::confirm::{Destructive, Next, Question, preview_confirm_apply};

#[derive(Subcommand)]
pub enum ItglueCommand {
    /// Delete an IT Glue organization: dependency check, export, confirmation, deletion.
    Delete(ItglueDeleteArgs),
}

#[derive(Args)]
pub struct ItglueDeleteArgs {
    /// IT Glue organization id.
    #[arg(long, conflicts_with = "org_name")]
    org_id: Option<String>,
    /// IT Glue organization name (exact, case-insensitive).
    #[arg(long)]
    org_name: Option<String>,
    /// Explicit confirmation (the seed's `confirm_delete`); without it (or --yes) nothing is deleted.
    /// On a terminal the organization's name is still typed back.
    #[arg(long)]
    confirm_delete: bool,
    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete even though records depend on the organization.
    #[arg(long)]
    force_delete: bool,
    /// Delete even if the export (the only way back) could not be made.
    #[arg(long)]
    force_without_export: bool,
    #[arg(long)]
    reason: Option<String>,
    /// Delete without asking (confirms like --confirm-delete, and skips typing the name).
    #[arg(long, short = 'y')]
    yes: bool,
    #[arg(long)]
    json: bool,
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
    #[command(flatten)]
    control: super::RunControl,
}

pub async fn run(source: &ConfigSource, command: ItglueCommand) -> Result<i32, OfframpError> {
    let ItglueCommand::Delete(args) = command;
    // The PSA's settings are read only when the IT Glue PSA policy needs them.
    let services = app::build_itglue(source).await?;
    let deps = services.delete_org_deps()?;
    let request = DeleteOrgRequest {
        plan_hash: None,
        parent_operation_id: None,
        org_id: args.org_id.clone(),
        org_name: args.org_name.clone(),
        confirm_delete: args.confirm_delete || args.yes,
        dry_run: args.dry_run,
        force_delete: args.force_delete,
        reason: args.reason.clone(),
        initiated_by: Some(initiated_by(args.initiated_by.as_deref())),
        force_without_export: args.force_without_export,
        break_lease: args.control.break_lease,
        idempotency_key: args.control.idempotency_key.clone(),
    };
    Ok(preview_confirm_apply(Deletion { deps, request, args }).await)
}

struct Deletion<'a> {
    deps: DeleteOrgDeps<'a>,
    request: DeleteOrgRequest,
    args: ItglueDeleteArgs,
}

impl Destructive for Deletion<'_> {
    type Report = DeleteOrgReport;

    /// IT Glue deletions cannot be undone: on a terminal even `--confirm-delete` is
    /// previewed and confirmed by typing the organization's name; only `--yes` skips that.
    fn needs_confirmation(&self) -> bool {
        !self.args.dry_run && !self.args.yes
    }

    /// Unattended, `--confirm-delete` is the confirmation; without it the workflow answers
    /// with its plan (recorded) and `ConfirmationRequired`.
    fn unattended_hint(&self) -> Option<&'static str> {
        None
    }

    async fn preview(&self) -> DeleteOrgReport {
        delete_itglue_org(&self.deps, DeleteOrgRequest { dry_run: true, ..self.request.clone() }).await
    }

    fn next(&self, plan: &DeleteOrgReport) -> Next {
        if plan.dependency_check.as_ref().is_some_and(|d| d.blocked) {
            eprintln!(
                "The deletion is blocked by the dependents above; nothing was deleted. Rerun with --force-delete if that is intended."
            );
            return Next::Stop(ErrorCode::DeletionBlocked.exit_code());
        }
        let name = plan.org_name.clone().unwrap_or_default();
        Next::Ask(Question::TypeBack {
            prompt: format!("Type the organization's name ({name}) to delete it: "),
            expected: name,
        })
    }

    fn confirm(&mut self, _plan: &DeleteOrgReport) {
        self.request.confirm_delete = true;
    }

    async fn apply(&self) -> DeleteOrgReport {
        delete_itglue_org(&self.deps, self.request.clone()).await
    }

    fn show(&self, report: &DeleteOrgReport) {
        print(report);
    }

    fn output(&self, report: &DeleteOrgReport) {
        if self.args.json { print_json(report) } else { print(report) }
    }
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
        eprintln!("  export {}: {}", export.id, export.status);
    }
    if let Some(archive) = &report.archive {
        let version = archive.version_id.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default();
        eprintln!(
            "  archived: {} {}/{}{version}, {} bytes, sha256 {}",
            archive.store, archive.bucket, archive.key, archive.size, archive.sha256
        );
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
