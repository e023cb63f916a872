//! What the CLI prints for a person: tables on stdout, progress on stderr.

use indicatif::{ProgressBar, ProgressStyle};
use offramp::domain::{OperationDetail, OperationSummary, iso8601};
use offramp::ports::Progress;
use offramp::workflows::deactivate_configs::ConfigDeactivationReport;

/// A progress bar on stderr, or nothing when not on a terminal.
pub struct BarProgress {
    bar: Option<ProgressBar>,
}

impl BarProgress {
    pub fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::hidden();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} configurations ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self { bar }
    }
}

impl Progress for BarProgress {
    fn start(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total);
            bar.set_position(0);
        }
    }
    fn item_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

pub fn print_report(report: &ConfigDeactivationReport) {
    let heading = if report.dry_run {
        "PLAN (dry run, nothing changed)"
    } else if report.status.as_deref() == Some("approval_required") {
        "PLAN (approval required, nothing changed)"
    } else if report.success {
        "DONE"
    } else {
        "FAILED"
    };
    println!(
        "{heading}: client {} ({})",
        report.client_name.as_deref().unwrap_or("?"),
        report.client_id.as_deref().unwrap_or("?")
    );
    if let Some(id) = &report.operation_id {
        println!("operation: {id}");
    }
    if !report.configs.is_empty() {
        println!();
        println!("{:<10} {:<40} {:<14} {:<14}", "ID", "CONFIGURATION", "WAS", "NOW");
        for config in &report.configs {
            println!(
                "{:<10} {:<40} {:<14} {:<14}",
                truncate(&config.config_id, 10),
                truncate(&config.config_name, 40),
                truncate(&config.previous_status, 14),
                truncate(&config.status, 14)
            );
        }
    }
    let s = &report.statistics;
    println!();
    let verb = if report.dry_run || report.status.is_some() { "to deactivate" } else { "deactivated" };
    println!(
        "found {}, {verb} {}, skipped {}, errors {}",
        s.configs_found, s.configs_deactivated, s.configs_skipped, s.errors
    );
    if let Some(hash) = &report.plan_hash {
        println!("plan hash: {hash}");
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    for error in &report.errors {
        match &error.config_id {
            Some(id) => println!("error [{}] configuration {id}: {}", error.code, error.message),
            None => println!("error [{}]: {}", error.code, error.message),
        }
    }
}

pub fn print_operation_list(operations: &[OperationSummary]) {
    if operations.is_empty() {
        println!("No operations recorded.");
        return;
    }
    println!(
        "{:<36}  {:<20}  {:<18}  {:<28}  {:<8}  {:<18}",
        "OPERATION", "STARTED", "WORKFLOW", "CLIENT", "DRY RUN", "STATE"
    );
    for summary in operations {
        let op = &summary.operation;
        println!(
            "{:<36}  {:<20}  {:<18}  {:<28}  {:<8}  {:<18}",
            op.operation_id,
            iso8601(op.created_at),
            op.workflow,
            truncate(&format!("{} ({})", op.client_name, op.client_id), 28),
            if op.dry_run { "yes" } else { "no" },
            summary.last_event.map(|k| k.as_str()).unwrap_or("-")
        );
    }
}

pub fn print_operation_detail(detail: &OperationDetail) {
    let op = &detail.operation;
    println!("operation   {}", op.operation_id);
    println!("workflow    {} on {}", op.workflow, op.psa);
    println!("client      {} ({})", op.client_name, op.client_id);
    println!("initiated   {} at {}", op.initiated_by, iso8601(op.created_at));
    println!("reason      {}", op.reason.as_deref().unwrap_or("-"));
    println!("dry run     {}", if op.dry_run { "yes" } else { "no" });
    if let Some(hash) = &op.plan_hash {
        println!("plan hash   {hash}");
    }
    println!();
    println!("events:");
    for event in &detail.events {
        println!("  {}  {:<18} {}", iso8601(event.at), event.kind.as_str(), event.detail);
    }
    println!();
    println!("snapshot: {} item(s) recorded before the first change", detail.snapshots.len());
    println!("changes:  {} record(s)", detail.changes.len());
    for change in &detail.changes {
        let status = |v: &Option<serde_json::Value>| {
            v.as_ref().and_then(|v| v.pointer("/status/name")).and_then(|s| s.as_str()).unwrap_or("-").to_string()
        };
        println!(
            "  {:<10} {:<36} {:<8} {:<12} -> {:<12} {}",
            change.item_id,
            truncate(&change.item_name, 36),
            format!("{:?}", change.outcome).to_lowercase(),
            status(&Some(change.before.clone())),
            status(&change.after),
            change.error_message.as_deref().unwrap_or("")
        );
    }
}
