//! `offramp rollback`: put back what an operation changed.

use clap::Args;
use offramp::app;
use offramp::config::ConfigSource;
use offramp::error::OfframpError;
use offramp::workflows::rollback::{RollbackDeps, RollbackReport, RollbackRequest, rollback};

use super::{initiated_by, print_json};
use crate::confirm::{Destructive, Next, Question, preview_confirm_apply};

#[derive(Args)]
pub struct RollbackArgs {
    /// The operation to roll back.
    operation_id: String,
    /// Show what would be restored; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    reason: Option<String>,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    #[arg(long)]
    json: bool,
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
    /// Also restore items recorded as uncertain (in flight when the run stopped): only once
    /// you know they were this operation's changes.
    #[arg(long)]
    include_uncertain: bool,
    #[command(flatten)]
    control: super::RunControl,
}

pub async fn run(source: &ConfigSource, args: RollbackArgs) -> Result<i32, OfframpError> {
    let services = app::build(source).await?;
    // Microsoft 365 adapters only when MS_CLIENT_ID is set: a PSA rollback never needs them.
    let deps = services.rollback_deps();
    let request = RollbackRequest {
        operation_id: args.operation_id.clone(),
        dry_run: args.dry_run,
        initiated_by: Some(initiated_by(args.initiated_by.as_deref())),
        reason: args.reason.clone(),
        break_lease: args.control.break_lease,
        idempotency_key: args.control.idempotency_key.clone(),
        include_uncertain: args.include_uncertain,
    };
    Ok(preview_confirm_apply(Rollback { deps, request, args }).await)
}

struct Rollback<'a> {
    deps: RollbackDeps<'a>,
    request: RollbackRequest,
    args: RollbackArgs,
}

impl Destructive for Rollback<'_> {
    type Report = RollbackReport;

    fn needs_confirmation(&self) -> bool {
        !self.args.dry_run && !self.args.yes
    }

    fn unattended_hint(&self) -> Option<&'static str> {
        Some("--yes")
    }

    async fn preview(&self) -> RollbackReport {
        rollback(&self.deps, RollbackRequest { dry_run: true, ..self.request.clone() }).await
    }

    fn next(&self, plan: &RollbackReport) -> Next {
        match plan.statistics.restored {
            0 => {
                eprintln!("Nothing to restore.");
                Next::Stop(0)
            }
            n => Next::Ask(Question::Yes(format!("Restore {n} item(s)? Type 'yes': "))),
        }
    }

    /// A rollback has no plan hash yet: the confirmed run restores what it finds then,
    /// item by item, leaving anything changed since alone (a conflict).
    fn confirm(&mut self, _plan: &RollbackReport) {}

    async fn apply(&self) -> RollbackReport {
        rollback(&self.deps, self.request.clone()).await
    }

    fn show(&self, report: &RollbackReport) {
        print_rollback(report);
    }

    fn output(&self, report: &RollbackReport) {
        if self.args.json { print_json(report) } else { print_rollback(report) }
    }
}

fn print_rollback(report: &RollbackReport) {
    let s = &report.statistics;
    eprintln!(
        "Rollback of {}{}: {} item(s), restored {}, already restored {}, conflicts {}, errors {}",
        report.rolled_back_operation_id,
        if report.dry_run { " (dry run)" } else { "" },
        s.items,
        s.restored,
        s.already_restored,
        s.conflicts,
        s.errors
    );
    for item in &report.items {
        eprintln!(
            "  {:?} {} {} ({}): now {}, restore to {}{}",
            item.action,
            item.item_type,
            item.item_id,
            item.item_name,
            item.current,
            item.restore_to,
            item.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default()
        );
    }
    for warning in &report.warnings {
        eprintln!("  warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("  error [{}]: {}", error.code, error.message);
    }
}
