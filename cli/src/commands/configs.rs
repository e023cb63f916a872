//! `offramp configs deactivate` (workflow 000, docs/workflows.md#000-configuration-deactivation).

use clap::{Args, Subcommand};
use offramp::app;
use offramp::config::ConfigSource;
use offramp::error::{ErrorCode, OfframpError};
use offramp::workflows::deactivate_configs::{
    Approval, ConfigDeactivationOptions, ConfigDeactivationReport, DeactivateConfigsRequest, Deps, deactivate_configs,
};

use super::{initiated_by, print_json};
use crate::confirm::{Destructive, Next, Question, preview_confirm_apply};
use crate::output::{self, BarProgress};

#[derive(Subcommand)]
pub enum ConfigsCommand {
    /// Set every configuration of an offboarded client inactive.
    Deactivate(DeactivateArgs),
}

#[derive(Args)]
pub struct DeactivateArgs {
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
    /// Deactivate even though the client does not meet the configured offboarded criteria
    /// (OFFRAMP_OFFBOARDED_*; recorded in the audit trail).
    #[arg(long)]
    allow_active_client: bool,
    #[command(flatten)]
    control: super::RunControl,
}

impl DeactivateArgs {
    fn request(&self, initiated_by: &str) -> DeactivateConfigsRequest {
        DeactivateConfigsRequest {
            parent_operation_id: None,
            client_id: self.client_id.clone(),
            client_name: self.client_name.clone(),
            offboarded_statuses: (!self.offboarded_statuses.is_empty()).then(|| self.offboarded_statuses.clone()),
            dry_run: self.dry_run,
            require_approval: self.require_approval,
            include_archived: self.include_archived,
            reason: self.reason.clone(),
            initiated_by: Some(initiated_by.to_string()),
            approval: self
                .approve
                .as_ref()
                .map(|hash| Approval { plan_hash: hash.clone(), approved_by: initiated_by.to_string() }),
            operation_id: self.resume.clone(),
            override_blast_radius: self.override_blast_radius,
            break_lease: self.control.break_lease,
            idempotency_key: self.control.idempotency_key.clone(),
            allow_active_client: self.allow_active_client,
        }
    }
}

pub async fn run(source: &ConfigSource, command: ConfigsCommand) -> Result<i32, OfframpError> {
    let ConfigsCommand::Deactivate(args) = command;
    let services = app::build(source).await?;
    let progress = BarProgress::new(!args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let deps = Deps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        progress: &progress,
        options: ConfigDeactivationOptions {
            concurrency: services.settings.workflow_concurrency,
            // The run reads the guard's limit for its client (client, else global, else
            // default) once the client is known: it may be given by name.
            guard_settings: Some(services.org_settings.clone()),
            // The sweep's criteria: a client that does not meet them is refused unless
            // --allow-active-client.
            offboarded: services.settings.offboarded.clone(),
            ..Default::default()
        },
    };
    let initiated_by = initiated_by(args.initiated_by.as_deref());
    let request = args.request(&initiated_by);
    Ok(preview_confirm_apply(Deactivation { deps, request, args, initiated_by }).await)
}

struct Deactivation<'a> {
    deps: Deps<'a>,
    request: DeactivateConfigsRequest,
    args: DeactivateArgs,
    initiated_by: String,
}

impl Destructive for Deactivation<'_> {
    type Report = ConfigDeactivationReport;

    fn needs_confirmation(&self) -> bool {
        let a = &self.args;
        !a.dry_run && !a.require_approval && a.approve.is_none() && a.resume.is_none() && !a.yes
    }

    fn unattended_hint(&self) -> Option<&'static str> {
        Some("--yes or --approve PLAN_HASH")
    }

    async fn preview(&self) -> ConfigDeactivationReport {
        deactivate_configs(&self.deps, DeactivateConfigsRequest { dry_run: true, ..self.request.clone() }).await
    }

    fn next(&self, plan: &ConfigDeactivationReport) -> Next {
        // A plan over the blast-radius guard would be refused after the 'yes' anyway: say so
        // now instead of asking a question whose answer cannot be used.
        if let Some(guard) = plan.blast_radius.as_ref().filter(|g| g.exceeded && !g.overridden) {
            eprintln!(
                "This run would deactivate {} configuration(s), over the limit of {} ({}); nothing was changed. \
                 Rerun with --override-blast-radius if that is intended.",
                guard.configs_to_deactivate, guard.max_configurations, guard.limit_source
            );
            return Next::Stop(ErrorCode::BlastRadiusExceeded.exit_code());
        }
        let to_change = plan.statistics.configs_deactivated;
        if to_change == 0 {
            eprintln!("Nothing to deactivate.");
            return Next::Stop(0);
        }
        Next::Ask(Question::Yes(format!(
            "Deactivate {to_change} configuration(s) of {}? Type 'yes' to apply this plan: ",
            plan.client_name.as_deref().unwrap_or_default()
        )))
    }

    /// The confirmation applies exactly the plan shown: its hash is the approval.
    fn confirm(&mut self, plan: &ConfigDeactivationReport) {
        let plan_hash = plan.plan_hash.clone().unwrap_or_default();
        self.request.approval = Some(Approval { plan_hash, approved_by: self.initiated_by.clone() });
    }

    async fn apply(&self) -> ConfigDeactivationReport {
        deactivate_configs(&self.deps, self.request.clone()).await
    }

    fn show(&self, report: &ConfigDeactivationReport) {
        print_report(report);
    }

    fn output(&self, report: &ConfigDeactivationReport) {
        if self.args.json { print_json(report) } else { print_report(report) }
    }
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
