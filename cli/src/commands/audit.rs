//! `offramp audit`: read the audit trail.

use clap::Subcommand;
use offramp::app;
use offramp::config::ConfigSource;
use offramp::domain::OperationFilter;
use offramp::error::{ErrorCode, OfframpError};

use super::print_json;
use crate::output;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Operations, newest first.
    List {
        /// Only operations on this PSA company id.
        #[arg(long)]
        client: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Everything recorded for one operation.
    Show {
        operation_id: String,
        #[arg(long)]
        json: bool,
    },
    /// The printable evidence report of an operation, rendered again from the trail: a
    /// client offboarding with every child run, or one workflow run (docs/evidence.md).
    Report {
        operation_id: String,
        /// Write the HTML here (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

pub async fn run(source: &ConfigSource, command: AuditCommand) -> Result<i32, OfframpError> {
    let audit = app::audit_store(source).await?;
    match command {
        AuditCommand::List { client, limit, json } => {
            let filter = OperationFilter { client_id: client, psa: None, limit };
            let operations = audit.list_operations(&filter).await?;
            if json { print_json(&operations) } else { output::print_operation_list(&operations) }
        }
        AuditCommand::Show { operation_id, json } => {
            let id = offramp::workflows::input::operation_id(&operation_id)?;
            let detail = audit.operation(&id).await?.ok_or_else(|| {
                OfframpError::new(ErrorCode::OperationNotFound, format!("no operation {id} in the audit trail"))
            })?;
            if json { print_json(&detail) } else { output::print_operation_detail(&detail) }
        }
        AuditCommand::Report { operation_id, out } => {
            let id = offramp::workflows::input::operation_id(&operation_id)?;
            let html = offramp::evidence::render_operation(audit.as_ref(), &id).await?;
            write_report(out.as_deref(), &html)?;
        }
    }
    Ok(0)
}

/// The document to `out`, or to standard output. A file is written whole or not at all.
fn write_report(out: Option<&std::path::Path>, html: &str) -> Result<(), OfframpError> {
    let Some(path) = out else {
        print!("{html}");
        return Ok(());
    };
    let failed = |e: std::io::Error| {
        OfframpError::new(ErrorCode::EvidenceStoreFailed, format!("writing {}: {e}", path.display()))
    };
    let partial = path.with_extension("html.partial");
    std::fs::write(&partial, html).and_then(|()| std::fs::rename(&partial, path)).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        failed(e)
    })?;
    eprintln!("Evidence report written to {} ({} bytes).", path.display(), html.len());
    Ok(())
}
