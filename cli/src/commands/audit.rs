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
    }
    Ok(0)
}
