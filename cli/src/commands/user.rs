//! `offramp user offboard` (workflow 003, docs/workflows.md#003-user-offboarding): one flag
//! per action, or the client's defaults (`--all`), or the Lambda's request JSON (`--input`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use offramp::app::{self, UserOffboardingServices};
use offramp::config::ConfigSource;
use offramp::error::OfframpError;
use offramp::workflows::offboard_user::report::OffboardStatus;
use offramp::workflows::offboard_user::{
    ActionOptions, Approval, IdentityMode, OffboardUserReport, OffboardUserRequest, OutOfOffice, offboard_user,
};

use super::{initiated_by, print_json};
use crate::confirm::{Destructive, Next, Question, preview_confirm_apply};
use crate::output::truncate;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Offboard one user: Microsoft 365 (Entra ID, Exchange Online), on-premises AD, or both, and the PSA.
    Offboard(Box<OffboardArgs>),
}

/// One flag per action (docs/workflows.md#003-actions).
#[derive(Args, Debug, Default)]
pub struct ActionFlags {
    /// Revoke the user's sign-in sessions (refresh tokens).
    #[arg(long)]
    revoke_sessions: bool,
    /// Set a random strong password (never shown nor logged).
    #[arg(long)]
    reset_password: bool,
    /// Keep the new password in the secret vault (deployed only: Secrets Manager).
    #[arg(long, requires = "reset_password")]
    store_password: bool,
    /// Convert the mailbox to a shared mailbox (before the licences go).
    #[arg(long)]
    convert_to_shared: bool,
    /// Give this user FullAccess to the mailbox (repeatable; `manager`: the user's manager).
    #[arg(long, value_name = "USER")]
    grant_full_access: Vec<String>,
    /// FullAccess without automapping (the mailbox does not open by itself in Outlook).
    #[arg(long, requires = "grant_full_access")]
    no_automapping: bool,
    /// Give this user SendAs on the mailbox (repeatable; `manager`: the user's manager).
    #[arg(long, value_name = "USER")]
    grant_send_as: Vec<String>,
    /// Hide the mailbox from the global address list.
    #[arg(long)]
    hide_from_gal: bool,
    /// Forward mail to this address (`manager`: the user's manager).
    #[arg(long, value_name = "ADDRESS")]
    forward_to: Option<String>,
    /// Keep a copy of forwarded mail in the mailbox.
    #[arg(long, requires = "forward_to")]
    keep_copy: bool,
    /// Automatic reply, inside the organization (and outside unless --out-of-office-external).
    #[arg(long, value_name = "TEXT")]
    out_of_office: Option<String>,
    /// Automatic reply to senders outside the organization.
    #[arg(long, value_name = "TEXT", requires = "out_of_office")]
    out_of_office_external: Option<String>,
    /// Remove the Exchange mobile device partnerships.
    #[arg(long)]
    remove_mobile_devices: bool,
    /// Retire the user's Intune-managed devices.
    #[arg(long)]
    retire_devices: bool,
    /// Block sign-in (accountEnabled false).
    #[arg(long)]
    disable_account: bool,
    /// Remove the user from every group and distribution list Graph or Exchange can change.
    #[arg(long)]
    remove_groups: bool,
    /// A group kept by --remove-groups (repeatable): its object id or display name.
    #[arg(long, value_name = "NAME_OR_ID", requires = "remove_groups")]
    keep_group: Vec<String>,
    /// Add the user to the client's leaver group (setting user_offboarding_leaver_group).
    #[arg(long)]
    add_to_leaver_group: bool,
    /// Make the manager an owner of the groups the user owns alone.
    #[arg(long)]
    transfer_ownership: bool,
    /// Clear the employee id.
    #[arg(long)]
    clear_employee_id: bool,
    /// Set the user's PSA contact inactive.
    #[arg(long)]
    disable_psa_contact: bool,
    /// Remove the user's manager.
    #[arg(long)]
    clear_manager: bool,
    /// Remove the directly assigned licences (last, after the mailbox conversion).
    #[arg(long)]
    remove_licences: bool,
    /// E-mail the manager what was done and what they now have access to.
    #[arg(long)]
    notify_manager: bool,
    /// On-premises AD: move the account to the client's disabled users OU (setting
    /// ad_disabled_ou, default AD_DISABLED_OU), after everything else.
    #[arg(long)]
    move_to_disabled_ou: bool,
    /// The disabled users OU is inside Entra Connect's sync scope (a synced user's move and
    /// conversion to shared are refused together without it: out of scope, the next sync
    /// deletes the cloud user and its mailbox).
    #[arg(long, requires = "move_to_disabled_ou")]
    disabled_ou_in_sync_scope: bool,
}

impl ActionFlags {
    fn options(&self) -> ActionOptions {
        ActionOptions {
            revoke_sessions: self.revoke_sessions,
            reset_password: self.reset_password,
            store_password: self.store_password,
            disable_account: self.disable_account,
            remove_mobile_devices: self.remove_mobile_devices,
            retire_devices: self.retire_devices,
            convert_to_shared: self.convert_to_shared,
            grant_full_access: self.grant_full_access.clone(),
            full_access_automapping: !self.no_automapping,
            grant_send_as: self.grant_send_as.clone(),
            hide_from_gal: self.hide_from_gal,
            forward_to: self.forward_to.clone(),
            forward_keep_copy: self.keep_copy,
            out_of_office: self.out_of_office.as_ref().map(|internal| OutOfOffice {
                internal: internal.clone(),
                external: self.out_of_office_external.clone(),
            }),
            remove_groups: self.remove_groups,
            keep_groups: self.keep_group.clone(),
            add_to_leaver_group: self.add_to_leaver_group,
            transfer_ownership: self.transfer_ownership,
            clear_employee_id: self.clear_employee_id,
            clear_manager: self.clear_manager,
            disable_psa_contact: self.disable_psa_contact,
            remove_licences: self.remove_licences,
            notify_manager: self.notify_manager,
            move_to_disabled_ou: self.move_to_disabled_ou,
            disabled_ou_in_sync_scope: self.disabled_ou_in_sync_scope,
        }
    }
}

#[derive(Args)]
pub struct OffboardArgs {
    /// The PSA company the user works for.
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// The client's Microsoft 365 tenant, id or domain (default: the client's m365_tenant_id setting).
    #[arg(long)]
    tenant: Option<String>,
    /// The leaver: user principal name or object id; with on-premises AD also the
    /// sAMAccountName.
    #[arg(long, value_name = "UPN_OR_SAM")]
    user: Option<String>,
    /// Where the user's identity lives: cloud, onprem, hybrid-synced or hybrid-unsynced
    /// (default: the client's user_offboarding_identity_mode, else detected).
    #[arg(long, value_name = "MODE")]
    directory: Option<IdentityMode>,
    /// hybrid-unsynced: the user's AD account (sAMAccountName, UPN or DN) when the client's
    /// pairing rule (user_offboarding_ad_pairing) does not find it.
    #[arg(long, value_name = "SAM_UPN_OR_DN")]
    onprem_user: Option<String>,
    #[command(flatten)]
    actions: ActionFlags,
    /// Also run the client's default actions (setting user_offboarding_default_actions).
    #[arg(long)]
    all: bool,
    /// The request as the Lambda takes it (JSON); only --dry-run, --yes, --json and
    /// --initiated-by (when the file has none) are combined with it.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["client", "tenant", "user", "directory", "onprem_user", "all", "resume", "approve"]
    )]
    input: Option<PathBuf>,
    /// Show the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop after planning and print the plan hash to approve.
    #[arg(long)]
    require_approval: bool,
    /// Apply the plan with this hash, and only if the plan is still the same.
    #[arg(long, value_name = "PLAN_HASH")]
    approve: Option<String>,
    /// Who approved the plan (default: --initiated-by).
    #[arg(long, value_name = "WHO", requires = "approve")]
    approved_by: Option<String>,
    /// No change before this time (RFC 3339); a plan can be made and approved before it.
    #[arg(long, value_name = "RFC3339")]
    effective_at: Option<DateTime<Utc>>,
    /// The PSA ticket to document the offboarding on (default: a new ticket).
    #[arg(long, value_name = "ID")]
    ticket: Option<String>,
    /// Why (recorded, and on the ticket).
    #[arg(long)]
    reason: Option<String>,
    /// Who is running this (recorded); default: the OS user.
    #[arg(long, env = "OFFRAMP_INITIATED_BY")]
    initiated_by: Option<String>,
    /// Continue an interrupted operation.
    #[arg(long, value_name = "OPERATION_ID", conflicts_with_all = ["client", "user"])]
    resume: Option<String>,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print the JSON report on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    control: super::RunControl,
}

impl OffboardArgs {
    fn request(&self, initiated_by: &str) -> Result<OffboardUserRequest, OfframpError> {
        if let Some(path) = &self.input {
            return self.request_from_file(path, initiated_by);
        }
        Ok(OffboardUserRequest {
            parent_operation_id: None,
            client_id: self.client.clone(),
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            directory: self.directory,
            onprem_user: self.onprem_user.clone(),
            actions: self.actions.options(),
            use_client_defaults: self.all,
            skip_default_actions: Vec::new(),
            summary_note_only: false,
            dry_run: self.dry_run,
            require_approval: self.require_approval,
            approval: self.approve.as_ref().map(|hash| Approval {
                plan_hash: hash.clone(),
                approved_by: self.approved_by.clone().unwrap_or_else(|| initiated_by.to_string()),
            }),
            effective_at: self.effective_at,
            ticket_id: self.ticket.clone(),
            reason: self.reason.clone(),
            initiated_by: Some(initiated_by.to_string()),
            operation_id: self.resume.clone(),
            idempotency_key: self.control.idempotency_key.clone(),
            break_lease: self.control.break_lease,
        })
    }

    /// The Lambda's request JSON, with its unknown fields refused as the Lambda refuses them.
    fn request_from_file(
        &self,
        path: &std::path::Path,
        initiated_by: &str,
    ) -> Result<OffboardUserRequest, OfframpError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OfframpError::invalid_input(format!("--input {}: {e}", path.display())))?;
        let mut request: OffboardUserRequest = serde_json::from_str(&text)
            .map_err(|e| OfframpError::invalid_input(format!("--input {}: {e}", path.display())))?;
        request.dry_run |= self.dry_run;
        request.initiated_by.get_or_insert_with(|| initiated_by.to_string());
        Ok(request)
    }
}

pub async fn run(source: &ConfigSource, command: UserCommand) -> Result<i32, OfframpError> {
    let UserCommand::Offboard(args) = command;
    let initiated_by = initiated_by(args.initiated_by.as_deref());
    let request = args.request(&initiated_by)?;
    let services = app::build_user_offboarding(source).await?;
    Ok(preview_confirm_apply(Offboarding { services, request, args: *args, initiated_by }).await)
}

struct Offboarding {
    services: UserOffboardingServices,
    request: OffboardUserRequest,
    args: OffboardArgs,
    initiated_by: String,
}

impl Destructive for Offboarding {
    type Report = OffboardUserReport;

    fn needs_confirmation(&self) -> bool {
        let r = &self.request;
        !r.dry_run && !r.require_approval && r.approval.is_none() && r.operation_id.is_none() && !self.args.yes
    }

    fn unattended_hint(&self) -> Option<&'static str> {
        Some("--yes or --approve PLAN_HASH")
    }

    /// The plan under no idempotency key: the key belongs to the run that applies it.
    async fn preview(&self) -> OffboardUserReport {
        let plan = OffboardUserRequest { dry_run: true, idempotency_key: None, ..self.request.clone() };
        offboard_user(&self.services.offboard_user_deps(), plan).await
    }

    fn next(&self, plan: &OffboardUserReport) -> Next {
        if plan.summary.planned == 0 {
            eprintln!("Nothing to change: every task is already done or cannot be done (see the reasons).");
            return Next::Stop(0);
        }
        let user = plan.user.as_ref().map_or("?", |u| u.user_principal_name.as_str());
        Next::Ask(Question::Yes(format!(
            "Offboard {user} of {}: {} task(s)? Type 'yes' to apply this plan: ",
            plan.client_name.as_deref().unwrap_or("?"),
            plan.summary.planned
        )))
    }

    /// The answer applies exactly the plan shown: its hash is the approval.
    fn confirm(&mut self, plan: &OffboardUserReport) {
        let plan_hash = plan.plan_hash.clone().unwrap_or_default();
        self.request.approval = Some(Approval { plan_hash, approved_by: self.initiated_by.clone() });
    }

    async fn apply(&self) -> OffboardUserReport {
        offboard_user(&self.services.offboard_user_deps(), self.request.clone()).await
    }

    fn show(&self, report: &OffboardUserReport) {
        print_offboarding(report);
    }

    fn output(&self, report: &OffboardUserReport) {
        if self.args.json { print_json(report) } else { print_offboarding(report) }
    }
}

/// A serialised enum's name (`done`, `approval_required`).
fn name_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn heading(report: &OffboardUserReport) -> &'static str {
    match report.status {
        OffboardStatus::Planned => "PLAN (dry run, nothing changed)",
        OffboardStatus::ApprovalRequired => "PLAN (approval required, nothing changed)",
        OffboardStatus::Completed => "DONE",
        OffboardStatus::Partial => "PARTIAL (some tasks failed; --resume retries them)",
        OffboardStatus::Failed => "FAILED",
    }
}

/// The report for a person: one line per task with its result and why.
fn print_offboarding(report: &OffboardUserReport) {
    let user = report.user.as_ref().map_or("?", |u| u.user_principal_name.as_str());
    println!(
        "{}: {user} of {} ({}), tenant {}",
        heading(report),
        report.client_name.as_deref().unwrap_or("?"),
        report.client_id.as_deref().unwrap_or("?"),
        report.tenant.as_deref().unwrap_or("?")
    );
    if let Some(id) = &report.operation_id {
        println!("operation: {id}");
    }
    if !report.tasks.is_empty() {
        println!();
        println!("{:<20} {:<34} {:<13} {:<13} REASON", "ACTION", "TARGET", "PHASE", "RESULT");
        for task in &report.tasks {
            let why = task.reason.as_deref().or(task.message.as_deref()).unwrap_or("");
            println!(
                "{:<20} {:<34} {:<13} {:<13} {}",
                task.action.as_str(),
                truncate(&task.target, 34),
                truncate(&task.phase, 13),
                name_of(&task.result),
                why
            );
        }
    }
    let s = &report.summary;
    println!();
    println!(
        "tasks {}, planned {}, done {}, skipped {}, failed {}, not attempted {}, uncertain {}, unverified {}",
        s.tasks, s.planned, s.done, s.skipped, s.failed, s.not_attempted, s.uncertain, s.unverified
    );
    print_footer(report);
}

fn print_footer(report: &OffboardUserReport) {
    if let Some(ticket) = &report.ticket_id {
        println!("ticket: {ticket}");
    }
    if let Some(hash) = &report.plan_hash {
        println!("plan hash: {hash}");
    }
    if !report.sole_owner_groups.is_empty() {
        println!("owned alone by the user: {}", report.sole_owner_groups.join(", "));
    }
    if let Some(notification) = &report.notification {
        let sent = notification.sent.map_or("unknown", |sent| if sent { "sent" } else { "not sent" });
        println!("manager notified ({}): {sent}", notification.to.join(", "));
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    for error in &report.errors {
        println!("error [{}]: {}", error.code, error.message);
    }
}
