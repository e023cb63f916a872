//! `offramp`: run Offramp's workflows from a terminal, read the audit trail.
//!
//! Settings come from the environment (see `offramp::config`) and an optional
//! `--config FILE`. Exit codes: 0 success, 1 some items failed, 2 usage error,
//! 3 invalid input or configuration, 4 client or configurations not found,
//! 5 refused (not offboarded, plan changed, not resumable, not confirmed),
//! 6 permission denied, 7 PSA unreachable, 8 audit trail unavailable, 9 the PSA's
//! request budget is spent (the run stopped cleanly; resume it later with `--resume`).

mod contacts;
mod itglue;
mod output;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use offramp::app;
use offramp::config::ConfigSource;
use offramp::domain::OperationFilter;
use offramp::error::{ErrorCode, OfframpError};
use offramp::logging::{self, LogFormat};
use offramp::workflows::deactivate_configs::{
    Approval, ConfigDeactivationOptions, ConfigDeactivationReport, DeactivateConfigsRequest, Deps, deactivate_configs,
};

#[derive(Parser)]
#[command(name = "offramp", version, about = "Offboarding automation for MSPs: planned, approved, audited, resumable")]
struct Cli {
    /// TOML file whose keys are the environment variable names (the environment wins).
    #[arg(long, global = true, env = "OFFRAMP_CONFIG")]
    config: Option<PathBuf>,
    /// Log level (also RUST_LOG).
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// PSA configurations (seed 000).
    #[command(subcommand)]
    Configs(ConfigsCommand),
    /// PSA contacts (seed 001).
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Put back what an operation changed (configuration or contact deactivation).
    Rollback(RollbackArgs),
    /// Organization settings per client, with global defaults.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// IT Glue (seed 002).
    #[command(subcommand)]
    Itglue(ItglueCommand),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum ContactsCommand {
    /// Set every contact of a company inactive, update related records, note the ticket, notify.
    Deactivate(ContactsArgs),
}

#[derive(Args)]
struct ContactsArgs {
    /// PSA company id.
    #[arg(long)]
    company_id: Option<String>,
    /// A contact id to leave alone (repeatable).
    #[arg(long = "exclude-contact", value_name = "CONTACT_ID")]
    exclude_contacts: Vec<String>,
    /// Keep the company's primary contact active (default: the psa_contact_preserve_primary setting).
    #[arg(long, conflicts_with = "no_preserve_primary")]
    preserve_primary: bool,
    /// Deactivate the primary contact too, whatever the setting says.
    #[arg(long)]
    no_preserve_primary: bool,
    /// Why (recorded in the audit trail, the ticket note and the notification).
    #[arg(long)]
    reason: Option<String>,
    /// Explicit confirmation (the seed's `confirmation`); without it the plan is shown and nothing changes.
    #[arg(long)]
    confirmation: bool,
    /// Existing PSA ticket to note the summary on (default: a new ticket on the configured board).
    #[arg(long)]
    ticket_id: Option<String>,
    /// Show the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run even though the blast-radius guard would stop it.
    #[arg(long)]
    override_blast_radius: bool,
    /// Where the requester's copy of the notification goes (default: --initiated-by if it is an address).
    #[arg(long)]
    requester_email: Option<String>,
    /// Continue an interrupted operation.
    #[arg(long, value_name = "OPERATION_ID", conflicts_with = "company_id")]
    resume: Option<String>,
    /// Print the seed's JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// Who is running this (recorded); default: the OS user.
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
}

#[derive(Subcommand)]
enum ItglueCommand {
    /// Delete an IT Glue organization: dependency check, export, confirmation, deletion.
    Delete(ItglueDeleteArgs),
}

#[derive(Args)]
struct ItglueDeleteArgs {
    /// IT Glue organization id.
    #[arg(long, conflicts_with = "org_name")]
    org_id: Option<String>,
    /// IT Glue organization name (exact, case-insensitive).
    #[arg(long)]
    org_name: Option<String>,
    /// Explicit confirmation (the seed's `confirm_delete`); without it nothing is deleted.
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
    /// Do not ask for the organization's name on a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    #[arg(long)]
    json: bool,
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
}

#[derive(Args)]
struct RollbackArgs {
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
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// The value a run for CLIENT would use, and where it comes from.
    Get { client: String, key: String },
    /// Set KEY for CLIENT (`global` for every client without its own value).
    Set {
        client: String,
        key: String,
        value: String,
        #[arg(long, env = "OFFRAMP_INITIATED_BY")]
        initiated_by: Option<String>,
    },
    /// Remove CLIENT's own value of KEY (the global value or the default applies again).
    Unset {
        client: String,
        key: String,
        #[arg(long, env = "OFFRAMP_INITIATED_BY")]
        initiated_by: Option<String>,
    },
    /// Every setting as a run for CLIENT would resolve it.
    List {
        client: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigsCommand {
    /// Set every configuration of an offboarded client inactive.
    Deactivate(DeactivateArgs),
}

#[derive(Args)]
struct DeactivateArgs {
    /// PSA company id.
    #[arg(long, conflicts_with = "client_name")]
    client_id: Option<String>,
    /// PSA company name (exact, case-insensitive).
    #[arg(long)]
    client_name: Option<String>,
    /// Show the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// List configurations that are already closed in another way (e.g. Disposed).
    #[arg(long)]
    include_archived: bool,
    /// Company status that counts as offboarded (repeatable); the run refuses other clients.
    #[arg(long = "offboarded-status")]
    offboarded_statuses: Vec<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
    /// Stop after planning and print the plan hash to approve.
    #[arg(long)]
    require_approval: bool,
    /// Apply the plan with this hash, and only if the plan is still the same.
    #[arg(long, value_name = "PLAN_HASH")]
    approve: Option<String>,
    /// Continue an interrupted operation.
    #[arg(long, value_name = "OPERATION_ID")]
    resume: Option<String>,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print the seed's JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// Who is running this (recorded); default: the OS user.
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
    /// Run even though the blast-radius guard (default 5,000 configurations) would stop it.
    #[arg(long)]
    override_blast_radius: bool,
}

#[derive(Subcommand)]
enum AuditCommand {
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

fn main() {
    let cli = Cli::parse();
    logging::init(&cli.log_level, if std::io::stderr().is_terminal() { LogFormat::Text } else { LogFormat::Json });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async {
        match run(cli).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error [{}]: {error}", error.code());
                error.code().exit_code()
            }
        }
    });
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<i32, OfframpError> {
    let source = ConfigSource::from_env_and_file(cli.config.as_deref())?;
    match cli.command {
        Command::Configs(ConfigsCommand::Deactivate(args)) => deactivate(&source, args).await,
        Command::Contacts(ContactsCommand::Deactivate(args)) => contacts::deactivate(&source, args).await,
        Command::Rollback(args) => contacts::rollback(&source, args).await,
        Command::Settings(command) => contacts::settings(&source, command).await,
        Command::Itglue(ItglueCommand::Delete(args)) => itglue::delete(&source, args).await,
        Command::Audit(AuditCommand::List { client, limit, json }) => {
            let audit = app::audit_store(&source).await?;
            let filter = OperationFilter { client_id: client, psa: None, limit };
            let operations = audit.list_operations(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&operations).unwrap_or_default());
            } else {
                output::print_operation_list(&operations);
            }
            Ok(0)
        }
        Command::Audit(AuditCommand::Show { operation_id, json }) => {
            let audit = app::audit_store(&source).await?;
            let id = offramp::workflows::input::operation_id(&operation_id)?;
            let detail = audit.operation(&id).await?.ok_or_else(|| {
                OfframpError::new(ErrorCode::OperationNotResumable, format!("no operation {id} in the audit trail"))
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail).unwrap_or_default());
            } else {
                output::print_operation_detail(&detail);
            }
            Ok(0)
        }
    }
}

fn default_user() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

async fn deactivate(source: &ConfigSource, args: DeactivateArgs) -> Result<i32, OfframpError> {
    let services = app::build(source).await?;
    let initiated_by = args.initiated_by.clone().unwrap_or_else(default_user);
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let progress = output::BarProgress::new(!args.json && std::io::stderr().is_terminal());
    let deps = Deps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        progress: &progress,
        options: ConfigDeactivationOptions {
            concurrency: services.settings.workflow_concurrency,
            // The run reads the guard's limit for its client (client, else global, else
            // default) once the client is known: it may be given by name.
            guard_settings: Some(services.org_settings.clone()),
            ..Default::default()
        },
    };
    let base = DeactivateConfigsRequest {
        client_id: args.client_id.clone(),
        client_name: args.client_name.clone(),
        offboarded_statuses: (!args.offboarded_statuses.is_empty()).then(|| args.offboarded_statuses.clone()),
        dry_run: args.dry_run,
        require_approval: args.require_approval,
        include_archived: args.include_archived,
        reason: args.reason.clone(),
        initiated_by: Some(initiated_by.clone()),
        approval: args
            .approve
            .as_ref()
            .map(|hash| Approval { plan_hash: hash.clone(), approved_by: initiated_by.clone() }),
        operation_id: args.resume.clone(),
        override_blast_radius: args.override_blast_radius,
        ..Default::default()
    };

    // A run that would change data without an explicit approval is shown first and
    // confirmed; the confirmation applies exactly the plan shown (its hash).
    let changes_data = !args.dry_run && !args.require_approval && args.approve.is_none() && args.resume.is_none();
    let request = if changes_data && !args.yes {
        if !interactive {
            return Err(OfframpError::new(
                ErrorCode::InvalidInput,
                "refusing to change data without confirmation: pass --yes, --approve PLAN_HASH, or run in a terminal",
            ));
        }
        let plan = deactivate_configs(&deps, DeactivateConfigsRequest { dry_run: true, ..base.clone() }).await;
        print_report(&plan);
        if !plan.success {
            return Ok(exit_code(&plan));
        }
        // A plan over the blast-radius guard would be refused after the 'yes' anyway: say so
        // now instead of asking a question whose answer cannot be used.
        if let Some(guard) = plan.blast_radius.as_ref().filter(|g| g.exceeded && !g.overridden) {
            eprintln!(
                "This run would deactivate {} configuration(s), over the limit of {} ({}); nothing was changed. \
                 Rerun with --override-blast-radius if that is intended.",
                guard.configs_to_deactivate, guard.max_configurations, guard.limit_source
            );
            return Ok(ErrorCode::BlastRadiusExceeded.exit_code());
        }
        let to_change = plan.statistics.configs_deactivated;
        if to_change == 0 {
            eprintln!("Nothing to deactivate.");
            return Ok(0);
        }
        if !confirm(&format!(
            "Deactivate {to_change} configuration(s) of {}? Type 'yes' to apply this plan: ",
            plan.client_name.clone().unwrap_or_default()
        )) {
            eprintln!("Not confirmed; nothing was changed.");
            return Ok(ErrorCode::PlanChanged.exit_code());
        }
        let hash = plan.plan_hash.clone().unwrap_or_default();
        DeactivateConfigsRequest {
            approval: Some(Approval { plan_hash: hash, approved_by: initiated_by.clone() }),
            ..base
        }
    } else {
        base
    };

    let report = deactivate_configs(&deps, request).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_report(&report);
    }
    Ok(exit_code(&report))
}

/// The report for a person, with the blast-radius guard's figures whenever the run has
/// them, so a plan shows how close it is to the limit and which setting set it.
fn print_report(report: &ConfigDeactivationReport) {
    output::print_report(report);
    if let Some(guard) = &report.blast_radius {
        println!(
            "blast radius: {} configuration(s) to deactivate, limit {} ({}){}",
            guard.configs_to_deactivate,
            guard.max_configurations,
            guard.limit_source,
            match (guard.exceeded, guard.overridden) {
                (true, true) => " — EXCEEDED, overridden",
                (true, false) => " — EXCEEDED",
                _ => "",
            }
        );
    }
}

fn exit_code(report: &ConfigDeactivationReport) -> i32 {
    if report.success { 0 } else { report.primary_error().map_or(1, ErrorCode::exit_code) }
}

fn confirm(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim().eq_ignore_ascii_case("yes")
}
