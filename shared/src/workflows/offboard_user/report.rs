//! The report of a user offboarding: one entry per task with its own result, the overall
//! status (`partial` when any task failed), and what a chain step needs to aggregate runs
//! (docs/workflows.md#003-report).

use serde::{Deserialize, Serialize};

use super::OffboardUserRequest;
use super::plan::{Phase, Plan, Task};
use super::read::Leaver;
use super::selection::ClientSettings;
use crate::domain::{self, IdentityMode, ItemKind, OffboardAction};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::DirectoryUser;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardStatus {
    /// Every task done or skipped with its reason.
    Completed,
    /// Some tasks failed; the others went on.
    Partial,
    /// The run stopped before or while changing things (see `errors`); resumable when it started.
    Failed,
    /// A dry run: the plan, nothing changed.
    Planned,
    /// The plan waits for an approval bound to its hash; nothing changed.
    ApprovalRequired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskResult {
    /// In a plan: will be done.
    Planned,
    Done,
    Skipped,
    Failed,
    /// Not sent: the run stopped first; a resume sends it.
    NotAttempted,
    /// In flight when an earlier run stopped; found done by the resume, so probably this
    /// operation's change.
    Uncertain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub action: OffboardAction,
    pub item_type: ItemKind,
    pub target_id: String,
    pub target: String,
    pub phase: String,
    /// Where the task is sent: Entra ID, Exchange Online, on-premises AD or the PSA.
    pub system: String,
    pub result: TaskResult,
    /// Why a task is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// The vendor's own error code (Graph `error.code`, Exchange's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// After the run the change was read back: `true` confirmed, `false` not found as left
    /// (see `message`), absent when it cannot be read back (sessions, a password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Whether a rollback can put it back.
    pub reversible: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub tasks: usize,
    pub planned: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub not_attempted: usize,
    pub uncertain: usize,
    /// Done but not found as left when read back.
    pub unverified: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedUser {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    pub synced_from_ad: bool,
}

impl From<&DirectoryUser> for ReportedUser {
    fn from(user: &DirectoryUser) -> Self {
        ReportedUser {
            id: user.id.clone(),
            user_principal_name: user.user_principal_name.clone(),
            display_name: user.display_name.clone(),
            mail: user.mail.clone(),
            synced_from_ad: user.is_synced(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedAdAccount {
    pub sam_account_name: String,
    /// As read before the run.
    pub distinguished_name: String,
    pub object_guid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationReport {
    pub to: Vec<String>,
    /// `None`: not known (a resume found it in flight); it is never sent twice.
    pub sent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OffboardAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffboardUserReport {
    pub success: bool,
    pub status: OffboardStatus,
    pub operation_id: Option<String>,
    pub plan_hash: Option<String>,
    pub dry_run: bool,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub tenant: Option<String>,
    /// Where the leaver's identity lives, and who said so (docs/workflows.md#003-identity-modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_mode: Option<IdentityMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_mode_decided_by: Option<String>,
    /// The AD account, in the modes that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_account: Option<ReportedAdAccount>,
    pub user: Option<ReportedUser>,
    /// As read before the run (the notification goes there).
    pub manager: Option<ReportedUser>,
    pub ticket_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<String>,
    pub tasks: Vec<TaskReport>,
    pub summary: TaskSummary,
    /// Groups and Teams the leaver owns alone.
    pub sole_owner_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationReport>,
    pub errors: Vec<ReportError>,
    pub warnings: Vec<String>,
    pub initiated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub timestamp: String,
}

impl OffboardUserReport {
    pub(super) fn new(request: &OffboardUserRequest) -> Self {
        OffboardUserReport {
            success: false,
            status: OffboardStatus::Failed,
            operation_id: request.operation_id.clone(),
            plan_hash: None,
            dry_run: request.dry_run,
            client_id: request.client_id.clone(),
            client_name: None,
            tenant: request.tenant.clone(),
            identity_mode: request.directory,
            identity_mode_decided_by: None,
            ad_account: None,
            user: None,
            manager: None,
            ticket_id: request.ticket_id.clone(),
            effective_at: request.effective_at.map(domain::iso8601),
            tasks: Vec::new(),
            summary: TaskSummary::default(),
            sole_owner_groups: Vec::new(),
            notification: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            initiated_by: request.initiated_by.clone().unwrap_or_else(|| "unknown".into()),
            reason: request.reason.clone(),
            timestamp: String::new(),
        }
    }

    pub(super) fn describe(&mut self, client: &ClientSettings, leaver: &Leaver) {
        self.client_id = Some(client.client_id.clone());
        self.client_name = Some(client.company_name.clone());
        self.tenant = Some(client.tenant.clone());
        self.identity_mode = Some(leaver.identity.mode);
        self.identity_mode_decided_by = Some(leaver.identity.decided_by.clone());
        self.ad_account = leaver.onprem.as_ref().map(|o| ReportedAdAccount {
            sam_account_name: o.user.sam_account_name.clone(),
            distinguished_name: o.user.dn.clone(),
            object_guid: o.user.object_guid.clone(),
        });
        self.user = Some(ReportedUser::from(&leaver.state.user));
        self.manager = leaver.state.manager.as_ref().map(ReportedUser::from);
    }

    /// The plan's tasks, each `planned` or `skipped`.
    pub(super) fn plan(&mut self, plan: &Plan) {
        self.plan_hash = Some(plan.hash.clone());
        self.sole_owner_groups = plan.sole_owner_groups.clone();
        self.tasks = plan.tasks.iter().map(planned).collect();
    }

    pub(super) fn fail(&mut self, error: &OfframpError) {
        self.errors.push(ReportError { code: error.code(), message: error.to_string(), action: None });
        self.status = OffboardStatus::Failed;
    }

    /// Totals, the overall status and the time.
    pub(super) fn finish(&mut self) {
        let count = |r: TaskResult| self.tasks.iter().filter(|t| t.result == r).count();
        self.summary = TaskSummary {
            tasks: self.tasks.len(),
            planned: count(TaskResult::Planned),
            done: count(TaskResult::Done),
            skipped: count(TaskResult::Skipped),
            failed: count(TaskResult::Failed),
            not_attempted: count(TaskResult::NotAttempted),
            uncertain: count(TaskResult::Uncertain),
            unverified: self.tasks.iter().filter(|t| t.verified == Some(false)).count(),
        };
        if matches!(self.status, OffboardStatus::Completed | OffboardStatus::Partial) {
            let partial = self.summary.failed + self.summary.not_attempted + self.summary.unverified > 0
                || self.notification.as_ref().is_some_and(|n| n.sent == Some(false));
            self.status = if partial { OffboardStatus::Partial } else { OffboardStatus::Completed };
        }
        self.success = match self.status {
            OffboardStatus::Completed | OffboardStatus::Planned => self.errors.is_empty(),
            _ => false,
        };
        self.timestamp = domain::iso8601(domain::now());
    }
}

impl OffboardUserReport {
    /// Whether the run answered what it was asked: done, planned, or a plan waiting for its
    /// approval (an answer, not a failure: the entry points give 200 / exit 0, as for
    /// workflow 000's `approval_required`).
    pub fn answered(&self) -> bool {
        self.success || (self.status == OffboardStatus::ApprovalRequired && self.errors.is_empty())
    }

    /// The code an entry point answers with (HTTP status, exit code): the first error of
    /// the run itself (a refusal, a stop, a note or e-mail not written); else, when a task
    /// failed or the run is partial, `ActionFailed` (207: the request was processed and some
    /// tasks failed, each with its own code in `tasks`), whatever the task's own code.
    pub fn primary_error(&self) -> Option<ErrorCode> {
        let run_level = self.errors.iter().find(|e| e.action.is_none()).map(|e| e.code);
        let tasks_failed = self.errors.iter().any(|e| e.action.is_some()) || self.status == OffboardStatus::Partial;
        run_level.or(tasks_failed.then_some(ErrorCode::ActionFailed))
    }
}

fn phase_name(phase: Phase) -> String {
    serde_json::to_value(phase).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

pub(super) fn planned(task: &Task) -> TaskReport {
    TaskReport {
        action: task.action,
        item_type: task.kind,
        target_id: task.id.clone(),
        target: task.name.clone(),
        phase: phase_name(task.phase),
        system: task.op.system().name().to_string(),
        result: if task.skip.is_some() { TaskResult::Skipped } else { TaskResult::Planned },
        reason: task.skip.clone(),
        error_code: None,
        vendor_code: None,
        message: None,
        verified: None,
        reversible: !super::tasks::irreversible(task.kind),
    }
}

impl crate::operation::IdempotentReport for OffboardUserReport {
    fn from_error(error: &OfframpError) -> Self {
        let mut report = OffboardUserReport::new(&OffboardUserRequest::default());
        report.fail(error);
        report.finish();
        report
    }

    fn error_codes(&self) -> Vec<ErrorCode> {
        self.errors.iter().map(|e| e.code).collect()
    }

    fn operation_id(&self) -> Option<String> {
        self.operation_id.clone()
    }
}
