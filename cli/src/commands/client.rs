//! `offramp client offboard`: the client-offboarding chain in this process, with the
//! embedded defaults or AWS: the same stages, step events and audit trail as the state
//! machine (docs/architecture.md#the-client-offboarding-chain).

use clap::{Args, Subcommand};
use offramp::chain::{
    ChainStep, ChainTrigger, ClientOffboardingReport, ClientOffboardingRequest, InProcessConsent, run_chain,
};
use offramp::config::ConfigSource;
use offramp::entry::{Function, FunctionServices, InProcessSteps, chain_deps};
use offramp::error::{OfframpError, Outcome};

use super::{initiated_by, print_json};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Offboard a whole client: its leavers, contacts, configurations and (when asked) its
    /// IT Glue organization, planned first, approved once, documented on one ticket.
    Offboard(OffboardArgs),
}

#[derive(Args)]
pub struct OffboardArgs {
    /// PSA company id.
    #[arg(long, conflicts_with = "client_name", required_unless_present = "client_name")]
    client_id: Option<String>,
    /// PSA company name (exact).
    #[arg(long)]
    client_name: Option<String>,
    /// A leaver to offboard from Microsoft 365 / AD (UPN or e-mail); repeat for each.
    #[arg(long = "leaver")]
    leavers: Vec<String>,
    /// Steps to run, comma-separated (default: offboard_users, deactivate_contacts, deactivate_configs).
    #[arg(long, value_delimiter = ',')]
    steps: Option<Vec<String>>,
    /// Also delete the client's IT Glue organization (after its export).
    #[arg(long)]
    include_itglue_deletion: bool,
    /// Plan every step and change nothing: prints the plan hash to approve.
    #[arg(long)]
    dry_run: bool,
    /// The plan hash a dry run printed: the chain runs only if its plan is still that one.
    #[arg(long, requires = "approved_by")]
    approve_plan: Option<String>,
    /// Who approved the plan.
    #[arg(long, requires = "approve_plan")]
    approved_by: Option<String>,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long)]
    json: bool,
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
}

impl OffboardArgs {
    fn request(&self) -> Result<ClientOffboardingRequest, OfframpError> {
        let mut steps = match &self.steps {
            Some(names) => names.iter().map(|n| step_named(n)).collect::<Result<Vec<_>, _>>()?,
            None => ChainStep::DEFAULT.to_vec(),
        };
        if self.include_itglue_deletion {
            steps.push(ChainStep::DeleteItglueOrg);
        }
        Ok(ClientOffboardingRequest {
            client_id: self.client_id.clone(),
            client_name: self.client_name.clone(),
            steps: Some(steps),
            leavers: self.leavers.clone(),
            dry_run: self.dry_run,
            reason: self.reason.clone(),
            initiated_by: Some(initiated_by(self.initiated_by.as_deref())),
            trigger: Some(ChainTrigger::Cli),
            ..Default::default()
        })
    }
}

fn step_named(name: &str) -> Result<ChainStep, OfframpError> {
    ChainStep::ALL.into_iter().find(|s| s.as_str() == name.trim()).ok_or_else(|| {
        let known: Vec<&str> = ChainStep::ALL.iter().map(|s| s.as_str()).collect();
        OfframpError::invalid_input(format!("unknown step '{name}': one of {}", known.join(", ")))
    })
}

pub async fn run(source: &ConfigSource, command: ClientCommand) -> Result<i32, OfframpError> {
    let ClientCommand::Offboard(args) = command;
    let request = args.request()?;
    let services = FunctionServices::build(Function::Orchestrator, source).await?;
    let invoked_by = request.initiated_by.clone().unwrap_or_default();
    let steps = InProcessSteps { services: &services, invoked_by };
    let deps = chain_deps(&services, &steps, None)?;
    let consent = InProcessConsent { approved_by: args.approved_by.clone(), plan_hash: args.approve_plan.clone() };
    let report = run_chain(&deps, request, &consent).await;
    if args.json {
        print_json(&report);
    } else {
        print_human(&report);
    }
    Ok(report.exit_code())
}

fn print_human(report: &ClientOffboardingReport) {
    let client = report.client_name.as_deref().unwrap_or("-");
    println!("Client offboarding of {client}: {}", report.status);
    if let Some(id) = &report.operation_id {
        println!("  operation {id}");
    }
    for step in &report.steps {
        let whose = step.leaver.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
        let status = step.result.get("status").and_then(|s| s.as_str()).unwrap_or("-");
        let op = step.operation_id().unwrap_or("-");
        println!("  {}{whose}: {status} (operation {op})", step.step);
    }
    for skipped in &report.skipped {
        println!("  {}: skipped, {}", skipped.step, skipped.why);
    }
    for step in &report.not_run {
        println!("  {step}: not run");
    }
    for error in &report.errors {
        println!("  error [{}]: {}", error.code, error.message);
    }
    if let (Some(hash), true) = (&report.plan_hash, report.dry_run || report.status == "approval_required") {
        println!("  plan hash {hash}: approve with --approve-plan {hash} --approved-by NAME");
    }
}
