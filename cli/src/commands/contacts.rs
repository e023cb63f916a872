//! `offramp contacts deactivate` (workflow 001, docs/workflows.md#001-contact-deactivation).

use clap::{Args, Subcommand};
use offramp::app;
use offramp::config::ConfigSource;
use offramp::error::{ErrorCode, OfframpError};
use offramp::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};

use super::{initiated_by, print_json};
use crate::confirm::{Destructive, Next, Question, preview_confirm_apply};

#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Set every contact of a company inactive, update related records, note the ticket, notify.
    Deactivate(ContactsArgs),
}

#[derive(Args)]
pub struct ContactsArgs {
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
    /// Explicit confirmation (the seed's `confirmation`); without it (or --yes) the plan is shown and nothing changes.
    #[arg(long)]
    confirmation: bool,
    /// Apply without asking (the same as --confirmation).
    #[arg(long, short = 'y')]
    yes: bool,
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
    #[command(flatten)]
    control: super::RunControl,
}

impl ContactsArgs {
    fn request(&self) -> DeactivateContactsRequest {
        let preserve_primary = match (self.preserve_primary, self.no_preserve_primary) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        DeactivateContactsRequest {
            parent_operation_id: None,
            company_id: self.company_id.clone(),
            exclude_contacts: self.exclude_contacts.clone(),
            preserve_primary,
            reason: self.reason.clone(),
            confirmation: self.confirmation || self.yes,
            ticket_id: self.ticket_id.clone(),
            dry_run: self.dry_run,
            initiated_by: Some(initiated_by(self.initiated_by.as_deref())),
            requester_email: self.requester_email.clone(),
            override_blast_radius: self.override_blast_radius,
            plan_hash: None,
            operation_id: self.resume.clone(),
            break_lease: self.control.break_lease,
            idempotency_key: self.control.idempotency_key.clone(),
        }
    }
}

pub async fn run(source: &ConfigSource, command: ContactsCommand) -> Result<i32, OfframpError> {
    let ContactsCommand::Deactivate(args) = command;
    let services = app::build(source).await?;
    let deps = services.contact_deps();
    let request = args.request();
    Ok(preview_confirm_apply(Deactivation { deps, request, args }).await)
}

struct Deactivation<'a> {
    deps: ContactDeps<'a>,
    request: DeactivateContactsRequest,
    args: ContactsArgs,
}

impl Destructive for Deactivation<'_> {
    type Report = ContactDeactivationReport;

    fn needs_confirmation(&self) -> bool {
        !self.args.dry_run && !self.request.confirmation && self.args.resume.is_none()
    }

    /// Unconfirmed, the workflow answers with its plan (recorded) and `ConfirmationRequired`.
    fn unattended_hint(&self) -> Option<&'static str> {
        None
    }

    async fn preview(&self) -> ContactDeactivationReport {
        deactivate_contacts(&self.deps, DeactivateContactsRequest { dry_run: true, ..self.request.clone() }).await
    }

    fn next(&self, plan: &ContactDeactivationReport) -> Next {
        if let Some(guard) = plan.blast_radius.as_ref().filter(|g| g.exceeded && !g.overridden) {
            eprintln!(
                "This run would deactivate {} of {} contacts, over the guard ({} / {}%); nothing was changed. \
                 Rerun with --override-blast-radius if that is intended.",
                guard.contacts_to_deactivate, guard.company_contacts, guard.max_contacts, guard.max_share_percent
            );
            return Next::Stop(ErrorCode::BlastRadiusExceeded.exit_code());
        }
        let count = plan.deactivation_summary.contacts_deactivated;
        if count == 0 {
            eprintln!("Nothing to deactivate.");
            return Next::Stop(0);
        }
        Next::Ask(Question::Yes(format!(
            "Deactivate {count} contact(s) of {}? Type 'yes' to apply this plan: ",
            plan.deactivation_summary.company_name.as_deref().unwrap_or_default()
        )))
    }

    /// The answer confirms exactly the plan shown (its hash), so nothing else can slip in.
    fn confirm(&mut self, plan: &ContactDeactivationReport) {
        self.request.confirmation = true;
        self.request.plan_hash = plan.plan_hash.clone();
    }

    async fn apply(&self) -> ContactDeactivationReport {
        deactivate_contacts(&self.deps, self.request.clone()).await
    }

    fn show(&self, report: &ContactDeactivationReport) {
        print_contacts(report);
    }

    fn output(&self, report: &ContactDeactivationReport) {
        if self.args.json { print_json(report) } else { print_contacts(report) }
    }
}

fn print_contacts(report: &ContactDeactivationReport) {
    let summary = &report.deactivation_summary;
    let status = report.status.as_deref().unwrap_or(if report.success { "completed" } else { "failed" });
    eprintln!("{} (company {}): {status}", summary.company_name.as_deref().unwrap_or("?"), summary.company_id);
    eprintln!(
        "  contacts found {}, {} {}, excluded {}, already inactive {}",
        summary.total_contacts_found,
        if report.dry_run { "to deactivate" } else { "deactivated" },
        summary.contacts_deactivated,
        summary.contacts_excluded,
        summary.contacts_already_inactive
    );
    for contact in &report.contacts_deactivated {
        eprintln!("    - {} ({}) {}", contact.name, contact.contact_id, contact.email.as_deref().unwrap_or(""));
    }
    for excluded in &report.contacts_excluded {
        eprintln!("    = {} ({}): {}", excluded.name, excluded.contact_id, excluded.reason);
    }
    let related = &report.related_updates;
    eprintln!(
        "  open tickets reassigned {}, configurations updated {}, scheduled tasks disabled {}",
        related.open_tickets_reassigned, related.configurations_updated, related.scheduled_tasks_disabled
    );
    if let Some(guard) = &report.blast_radius {
        eprintln!(
            "  blast radius: {} of {} contacts ({}%), limits {} / {}%{}",
            guard.contacts_to_deactivate,
            guard.company_contacts,
            guard.share_percent,
            guard.max_contacts,
            guard.max_share_percent,
            if guard.exceeded { " — EXCEEDED" } else { "" }
        );
    }
    if let Some(ticket) = &report.ticket_id {
        eprintln!("  ticket: {ticket}");
    }
    if let Some(id) = &report.audit_trail.operation_id {
        eprintln!(
            "  operation: {id}{}",
            if report.audit_trail.rollback_available { " (rollback available)" } else { "" }
        );
    }
    if let Some(hash) = &report.plan_hash {
        eprintln!("  plan hash: {hash}");
    }
    for warning in &report.warnings {
        eprintln!("  warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("  error [{}]: {}", error.code, error.message);
    }
}
