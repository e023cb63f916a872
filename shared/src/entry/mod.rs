//! Entry-point logic shared by the Lambda functions: recognise the trigger, run the
//! workflow, shape the answer. Kept out of the binaries so tests drive it directly
//! with the files in `events/`.
//!
//! Triggers of `deactivate-configs`:
//! - direct invoke / Step Functions: the event *is* the request (workflow 000 input,
//!   docs/workflows.md#000-inputs);
//! - API Gateway proxy (REST, or HTTP API payload 2.0): the request is the JSON `body`; the
//!   answer is a proxy response whose body is the report;
//! - EventBridge schedule: the sweep over every client that meets the configured offboarded
//!   criteria, a dry run when `OFFRAMP_SWEEP_DRY_RUN` says so. The event says only *when*:
//!   one whose `detail` carries anything is refused (`InvalidInput`), changing nothing.
//!
//! `offboard-user` (workflow 003) is handled in `offboard_user.rs`, with the Microsoft 365
//! adapters only it is built with ([`FunctionServices::UserOffboarding`]).
//!
//! Every event is parsed into its `aws_lambda_events` type first, then into one
//! [`Invocation`] (`invocation.rs`); nothing is read from an event by hand.
//!
//! Every API Gateway answer takes its HTTP status from one place: the report's
//! [`Outcome`], i.e. 200 on success, else the primary error's row of the
//! [`ErrorCode`] table (`ErrorCode::http_status`). A spent request budget (429) carries
//! `Retry-After`.
//!
//! Every other trigger (direct invoke, Step Functions, EventBridge schedule, asynchronous
//! invoke) gets the report when the run succeeded or waits for a person, and otherwise a
//! Lambda error named by the primary code ([`Outcome::lambda_error_type`], the one rule):
//! an [`Answer`] carries both, and `crate::lambda` logs the report before it returns the
//! error to the runtime.

pub mod api;
mod caller;
mod chain;
mod invocation;
mod offboard_user;
pub mod webhook;

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

pub use caller::{API_PRINCIPAL_FIELD, ASSIGNED_OPERATION_ID_FIELD, Caller, EXECUTION_ARN_FIELD, initiator};
pub use chain::{InProcessSteps, chain_deps, function_of, orchestrator_event};
pub use invocation::{Invocation, Refused, Reply, SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCE, Schedule, Schedules};
pub use offboard_user::offboard_user_event;
pub use webhook::{WebhookServices, webhook_event};

use crate::app::Services;
use crate::error::{ErrorCode, OfframpError, Outcome, budget_resets_in_seconds};
use crate::operation::Deadline;
use crate::ports::{NoProgress, SettingsStore};
use crate::workflows::deactivate_configs::{
    ConfigDeactivationOptions, ConfigDeactivationReport, DeactivateConfigsRequest, Deps, deactivate_configs,
};
use crate::workflows::deactivate_contacts::sweep::sweep_offboarded_contacts;
use crate::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};
use crate::workflows::delete_itglue_org::CleanupReport;
use crate::workflows::delete_itglue_org::{
    DeleteOrgDeps, DeleteOrgReport, DeleteOrgRequest, cleanup_offboarded_organizations, delete_itglue_org,
};
use crate::workflows::offboarded::SweepReport;
use crate::workflows::rollback::{RollbackReport, RollbackRequest, rollback};
use crate::workflows::sweep::sweep_offboarded_clients;

/// The Lambda functions, one per workflow (and rollback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    DeactivateConfigs,
    DeactivateContacts,
    Rollback,
    DeleteItGlueOrg,
    OffboardUser,
    /// The client-offboarding chain's own actions (resolve, bind, finalize).
    Orchestrator,
    /// PSA webhooks: starts the client-offboarding chain, never a workflow (`webhook.rs`).
    Webhook,
}

/// What one invocation answers: the payload (the report, or API Gateway's proxy response)
/// and, for a trigger that is not API Gateway whose run failed or was refused, the Lambda
/// error the runtime reports instead. It reads like the payload (`answer["success"]`,
/// `{answer}`), so a test looks at the report whatever the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub payload: Value,
    pub error: Option<LambdaError>,
}

/// A Lambda error: what the runtime reports as `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LambdaError {
    /// The report's primary [`ErrorCode`] (`PSAConnectionError`, `PlanChanged`,
    /// `ActionFailed`, …): what a state machine's `Retry`/`Catch` names in `ErrorEquals`.
    pub error_type: String,
    /// A JSON object, `{"message", "operation_id"?, "status"?}`: the primary error's message
    /// and the operation (and run status) a `Catch` hands on to whatever handles the failure.
    pub error_message: String,
}

impl Answer {
    /// The payload, whatever the trigger (a test's view; the runtime sees [`Self::error`] first).
    pub fn into_payload(self) -> Value {
        self.payload
    }

    /// The `errorType` when this answer is a Lambda error.
    pub fn error_type(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.error_type.as_str())
    }

    /// The operation the answer reports on: the report's, or for a schedule the first failed run's.
    pub fn operation_id(&self) -> Option<&str> {
        operation_of(&self.payload)
    }

    fn report(payload: Value) -> Self {
        Self { payload, error: None }
    }
}

impl std::ops::Deref for Answer {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.payload
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(error) => {
                write!(f, "Lambda error {} {} with the report {}", error.error_type, error.error_message, self.payload)
            }
            None => self.payload.fmt(f),
        }
    }
}

/// Hand one event to `function`'s handler, with no deadline (the run goes to its end).
pub async fn handle(function: Function, services: &Services, event: Value, invoked_by: &str) -> Answer {
    Box::pin(handle_until(function, services, event, invoked_by, Deadline::none())).await
}

/// Hand one event to `function`'s handler; configuration and contact deactivation stop
/// sending changes at `deadline` and answer with a `continuation` (the Lambda's deadline less
/// its margin, `crate::lambda`; a test's own). `offboard-user` needs the Microsoft 365
/// adapters as well ([`FunctionServices::build`]); with these alone it answers `ConfigurationError`.
pub async fn handle_until(
    function: Function,
    services: &Services,
    event: Value,
    invoked_by: &str,
    deadline: Deadline,
) -> Answer {
    match function {
        Function::OffboardUser => {
            let error = OfframpError::configuration("offboard-user needs Microsoft 365's adapters (MS_CLIENT_ID)");
            let reply = Invocation::<Value>::parse(event, Schedules::Refused).map_or_else(|r| r.reply, |i| i.reply());
            answer(reply, &offboard_user::refused(&error))
        }
        Function::Webhook => webhook::refused_without_services(),
        Function::DeactivateConfigs => configs_event(services, event, invoked_by, deadline).await,
        Function::DeactivateContacts => contacts_event(services, event, invoked_by, deadline).await,
        Function::Rollback => rollback_event(services, event, invoked_by).await,
        Function::DeleteItGlueOrg => delete_itglue_org_event(services, event, invoked_by).await,
        Function::Orchestrator => {
            let error = OfframpError::configuration("the orchestrator is handled with FunctionServices::handle");
            answer(Reply::Report, &crate::chain::ClientOffboardingReport::refused(&error, false))
        }
    }
}

// ---------------------------------------------------------------------------
// Outcomes: what the answer's status (and the CLI's exit code) is made of
// ---------------------------------------------------------------------------

macro_rules! outcome_of_report {
    ($($report:ty),+) => {$(
        impl Outcome for $report {
            fn succeeded(&self) -> bool {
                self.success
            }
            fn primary_code(&self) -> Option<ErrorCode> {
                self.primary_error()
            }
        }
    )+};
}

outcome_of_report!(ConfigDeactivationReport, ContactDeactivationReport, RollbackReport, DeleteOrgReport);

/// A nightly sweep (configurations or contacts) failed when its listing or a company's check
/// did, or when one client's run did not succeed (the others still ran): its code is the
/// sweep's own error's, else the first such client's.
impl<Run: Outcome> Outcome for SweepReport<Run> {
    fn succeeded(&self) -> bool {
        self.success
    }
    fn primary_code(&self) -> Option<ErrorCode> {
        let failed_run = || self.operations.iter().filter(|o| !o.succeeded()).find_map(|o| o.primary_code());
        self.errors.first().map(|e| e.code).or_else(failed_run)
    }
}

/// The monthly cleanup failed when a listing or a company's check did, or an organization's
/// deletion failed; an organization blocked by its dependents is skipped, not a failure.
impl Outcome for CleanupReport {
    fn succeeded(&self) -> bool {
        self.success
    }
    fn primary_code(&self) -> Option<ErrorCode> {
        let failed_run = || {
            self.organizations
                .iter()
                .filter_map(DeleteOrgReport::primary_error)
                .find(|code| *code != ErrorCode::DeletionBlocked)
        };
        self.errors.first().map(|e| e.code).or_else(failed_run)
    }
}

/// `Retry-After` when a report has no readable reset time: the longest window any vendor
/// budget uses (Autotask's rolling hour), so a client that obeys it never comes back early.
const RETRY_AFTER_FALLBACK_SECONDS: u64 = 3600;

/// Seconds a caller should wait before retrying a run stopped by a spent request budget.
fn retry_after_seconds(report: &Value) -> u64 {
    let budget = ErrorCode::RequestBudgetExhausted.as_str();
    report
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("code").and_then(Value::as_str) == Some(budget))
        .find_map(|e| e.get("message").and_then(Value::as_str).and_then(budget_resets_in_seconds))
        .unwrap_or(RETRY_AFTER_FALLBACK_SECONDS)
        .max(1)
}

/// The longest primary error message an `errorMessage` carries (the report, logged, has it whole).
const ERROR_MESSAGE_CHARS: usize = 1000;

/// The operation a report names: `operation_id`, contact deactivation's
/// `audit_trail.operation_id`, or for a schedule's report the first failed run's.
fn operation_of(report: &Value) -> Option<&str> {
    let own = report.get("operation_id").or_else(|| report.pointer("/audit_trail/operation_id"));
    if let Some(id) = own.and_then(Value::as_str) {
        return Some(id);
    }
    ["operations", "organizations"]
        .iter()
        .filter_map(|runs| report.get(*runs).and_then(Value::as_array))
        .flatten()
        .filter(|run| run.get("success") == Some(&Value::Bool(false)))
        .find_map(operation_of)
}

/// The message of the report's first error with `code` (searched in a schedule's runs too),
/// else the code's meaning with the first error the report has.
fn message_of(report: &Value, code: &str) -> String {
    fn errors(report: &Value) -> Vec<&Value> {
        let own = report.get("errors").and_then(Value::as_array).into_iter().flatten();
        let runs = ["operations", "organizations"]
            .iter()
            .filter_map(|runs| report.get(*runs).and_then(Value::as_array))
            .flatten()
            .flat_map(errors);
        own.chain(runs).collect()
    }
    let errors = errors(report);
    let text = |e: &&Value| e.get("message").and_then(Value::as_str).map(str::to_string);
    let meaning = ErrorCode::ALL.iter().find(|c| c.as_str() == code).map_or("", |c| c.meaning());
    let message = errors
        .iter()
        .filter(|e| e.get("code").and_then(Value::as_str) == Some(code))
        .find_map(text)
        .or_else(|| {
            let first = errors.first()?;
            Some(format!("{meaning} First: {}: {}", first.get("code")?.as_str()?, text(first)?))
        })
        .unwrap_or_else(|| meaning.to_string());
    message.chars().take(ERROR_MESSAGE_CHARS).collect()
}

/// The Lambda error of a report the rule says is one (see [`Outcome::lambda_error_type`]).
fn lambda_error(error_type: &str, report: &Value) -> LambdaError {
    let mut message = json!({ "message": message_of(report, error_type) });
    if let Some(id) = operation_of(report) {
        message["operation_id"] = json!(id);
    }
    if let Some(status) = report.get("status").and_then(Value::as_str) {
        message["status"] = json!(status);
    }
    LambdaError { error_type: error_type.to_string(), error_message: message.to_string() }
}

/// The answer: for API Gateway a proxy response whose status is the report's
/// [`Outcome::http_status`]; for any other trigger the report itself, and with it the
/// Lambda error [`Outcome::lambda_error_type`] decides on.
fn answer<R: Outcome + Serialize>(reply: Reply, report: &R) -> Answer {
    let body = serde_json::to_value(report).unwrap_or_default();
    if reply != Reply::Proxy {
        let error = report.lambda_error_type().map(|error_type| lambda_error(error_type, &body));
        let payload = if reply == Reply::StepResult { crate::chain::step_result(&body) } else { body };
        return Answer { payload, error };
    }
    let status = report.http_status();
    let mut headers = json!({ "content-type": "application/json" });
    if status == ErrorCode::RequestBudgetExhausted.http_status() {
        headers["retry-after"] = json!(retry_after_seconds(&body).to_string());
    }
    Answer::report(json!({
        "statusCode": status,
        "headers": headers,
        "isBase64Encoded": false,
        "body": body.to_string(),
    }))
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

fn deps(services: &Services, deadline: Deadline) -> Deps<'_> {
    Deps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        progress: &NoProgress,
        options: ConfigDeactivationOptions {
            concurrency: services.settings.workflow_concurrency,
            guard_settings: Some(config_guard(services)),
            offboarded: services.settings.offboarded.clone(),
            deadline,
            ..Default::default()
        },
    }
}

/// Where the configuration guard's limit is read. The run resolves it per client (the
/// client's value, else the global one, else the default) once it knows the client, which
/// here may be given by name or, in the sweep, be any of many; it records the value used.
fn config_guard(services: &Services) -> Arc<dyn SettingsStore> {
    services.org_settings.clone()
}

/// `initiated_by` as recorded: who is asking (the trigger's principal, else the invoked
/// function), and the request's own `initiated_by` only as whom the run is on behalf of
/// (`caller.rs`, docs/architecture.md#who-is-asking).
fn with_initiator(caller: &Caller, given: Option<String>, invoked_by: &str) -> Option<String> {
    initiator(caller.principal_or(invoked_by), given)
}

/// Who a schedule's runs are recorded as: the rule.
fn scheduled_by(schedule: &Schedule) -> String {
    format!("schedule:{}", schedule.rule)
}

/// Handle one `deactivate-configs` invocation, with no deadline. Never panics; every outcome is JSON.
pub async fn deactivate_configs_event(services: &Services, event: Value, invoked_by: &str) -> Answer {
    // Boxed: a workflow's future is large, and a test's thread stack is 2 MiB.
    Box::pin(configs_event(services, event, invoked_by, Deadline::none())).await
}

async fn configs_event(services: &Services, event: Value, invoked_by: &str, deadline: Deadline) -> Answer {
    let refuse = |reply: Reply, error: &OfframpError| {
        answer(reply, &ConfigDeactivationReport::failure(error, None, None, false))
    };
    let (invocation, caller) = match Invocation::<DeactivateConfigsRequest>::parse_asked(event, Schedules::Accepted) {
        Ok(parsed) => parsed,
        Err(Refused { reply, error }) => return refuse(reply, &error),
    };
    match invocation.into_request() {
        Ok((reply, mut request)) => {
            request.initiated_by = with_initiator(&caller, request.initiated_by, invoked_by);
            let deps = deps(services, deadline);
            answer(
                reply,
                &api::run_assigned(services.audit.as_ref(), &caller, Box::pin(deactivate_configs(&deps, request)))
                    .await,
            )
        }
        Err(schedule) => {
            // Every parameter from the settings: the event only says it is time.
            let settings = &services.settings;
            let deps = deps(services, deadline);
            let by = scheduled_by(&schedule);
            let report = sweep_offboarded_clients(&deps, &settings.offboarded, settings.sweep_dry_run, &by).await;
            answer(Reply::Report, &report)
        }
    }
}

/// The request of a function without a schedule and who is asking, or the answer that
/// refuses the event.
fn request_of<R: serde::de::DeserializeOwned>(event: Value) -> Result<(Reply, R, Caller), Refused> {
    let schedule_refused = |_| Refused {
        reply: Reply::Report,
        error: OfframpError::invalid_input("this function has no schedule; nothing was changed"),
    };
    let (invocation, caller) = Invocation::<R>::parse_asked(event, Schedules::Refused)?;
    let (reply, request) = invocation.into_request().map_err(schedule_refused)?;
    Ok((reply, request, caller))
}

/// Handle one `deactivate-contacts` invocation (workflow 001,
/// docs/workflows.md#001-contact-deactivation): direct invoke / Step Functions (the event is the
/// request), API Gateway (the body is), or the EventBridge schedule: the nightly contact sweep
/// over every offboarded client with active contacts, every parameter from the settings
/// (`OFFRAMP_OFFBOARDED_*`, `OFFRAMP_SWEEP_DRY_RUN`), none from the event. Never panics.
pub async fn deactivate_contacts_event(services: &Services, event: Value, invoked_by: &str) -> Answer {
    Box::pin(contacts_event(services, event, invoked_by, Deadline::none())).await
}

async fn contacts_event(services: &Services, event: Value, invoked_by: &str, deadline: Deadline) -> Answer {
    let (invocation, caller) = match Invocation::<DeactivateContactsRequest>::parse_asked(event, Schedules::Accepted) {
        Ok(parsed) => parsed,
        Err(Refused { reply, error }) => return answer(reply, &ContactDeactivationReport::invalid(&error, invoked_by)),
    };
    let deps = ContactDeps { deadline, ..services.contact_deps() };
    match invocation.into_request() {
        Ok((reply, mut request)) => {
            request.initiated_by = with_initiator(&caller, request.initiated_by, invoked_by);
            let run = Box::pin(deactivate_contacts(&deps, request));
            answer(reply, &api::run_assigned(services.audit.as_ref(), &caller, run).await)
        }
        Err(schedule) => {
            let settings = &services.settings;
            let by = scheduled_by(&schedule);
            let sweep = sweep_offboarded_contacts(&deps, &settings.offboarded, settings.sweep_dry_run, &by);
            answer(Reply::Report, &Box::pin(sweep).await)
        }
    }
}

/// Handle one `rollback` invocation: `{"operation_id", "dry_run"?, "reason"?}`. Never panics.
pub async fn rollback_event(services: &Services, event: Value, invoked_by: &str) -> Answer {
    let (reply, mut request, caller) = match request_of::<RollbackRequest>(event) {
        Ok(parsed) => parsed,
        Err(Refused { reply, error }) => return answer(reply, &RollbackReport::invalid(&error)),
    };
    request.initiated_by = with_initiator(&caller, request.initiated_by, invoked_by);
    let deps = services.rollback_deps();
    answer(reply, &api::run_assigned(services.audit.as_ref(), &caller, Box::pin(rollback(&deps, request))).await)
}

/// Handle one `delete-itglue-org` invocation (workflow 002,
/// docs/workflows.md#002-it-glue-organization-deletion): direct invoke / Step Functions /
/// API Gateway carry the workflow's request; the EventBridge schedule runs the cleanup of
/// organizations whose PSA company has been offboarded at least `OFFRAMP_ITGLUE_OFFBOARDED_DAYS`,
/// a dry run when `OFFRAMP_ITGLUE_CLEANUP_DRY_RUN` says so (never from the event). Never panics.
pub async fn delete_itglue_org_event(services: &Services, event: Value, invoked_by: &str) -> Answer {
    itglue_event(services.delete_org_deps(), &services.settings.itglue, event, invoked_by).await
}

async fn itglue_event(
    deps: Result<DeleteOrgDeps<'_>, OfframpError>,
    itglue: &crate::config::ItGlueRunSettings,
    event: Value,
    invoked_by: &str,
) -> Answer {
    let (invocation, caller) = match Invocation::<DeleteOrgRequest>::parse_asked(event, Schedules::Accepted) {
        Ok(parsed) => parsed,
        Err(Refused { reply, error }) => {
            return answer(reply, &DeleteOrgReport::failed(error.code(), error.to_string()));
        }
    };
    let deps = match deps {
        Ok(deps) => deps,
        Err(e) => return answer(invocation.reply(), &DeleteOrgReport::failed(e.code(), e.to_string())),
    };
    match invocation.into_request() {
        Ok((reply, mut request)) => {
            request.initiated_by = with_initiator(&caller, request.initiated_by, invoked_by);
            answer(reply, &api::run_assigned(deps.audit, &caller, Box::pin(delete_itglue_org(&deps, request))).await)
        }
        Err(schedule) => {
            let (days, dry_run, by) = (itglue.offboarded_days, itglue.cleanup_dry_run, scheduled_by(&schedule));
            let report = cleanup_offboarded_organizations(&deps, days, dry_run, &by).await;
            answer(Reply::Report, &report)
        }
    }
}

/// The adapters a function binary is built with, once per cold start: every workflow's,
/// or for delete-itglue-org IT Glue's, with the PSA only when the IT Glue PSA policy needs
/// one (`app::build_itglue`: with `OFFRAMP_ITGLUE_PSA_POLICY=off` no PSA setting is read).
pub enum FunctionServices {
    Workflows(Box<Services>),
    ItGlue(Box<crate::app::ItGlueServices>),
    /// offboard-user: every workflow's adapters and Microsoft 365's (`app::build_user_offboarding`).
    UserOffboarding(Box<crate::app::UserOffboardingServices>),
    /// webhook: the delivery log, the settings, the chain starter (`webhook::build_webhook_services`).
    Webhook(Box<WebhookServices>),
}

impl FunctionServices {
    pub async fn build(function: Function, source: &crate::config::ConfigSource) -> Result<Self, OfframpError> {
        Ok(match function {
            Function::Webhook => Self::Webhook(Box::new(webhook::build_webhook_services(source).await?)),
            Function::DeleteItGlueOrg => Self::ItGlue(Box::new(crate::app::build_itglue(source).await?)),
            Function::OffboardUser => {
                Self::UserOffboarding(Box::new(crate::app::build_user_offboarding(source).await?))
            }
            // The orchestrator dry-runs every step, leavers' included when Microsoft 365 or
            // Active Directory is configured.
            Function::Orchestrator if crate::app::user_offboarding_configured(source) => {
                Self::UserOffboarding(Box::new(crate::app::build_user_offboarding(source).await?))
            }
            _ => Self::Workflows(Box::new(crate::app::build(source).await?)),
        })
    }

    /// [`handle`] with these adapters, with no deadline.
    pub async fn handle(&self, function: Function, event: Value, invoked_by: &str) -> Answer {
        self.handle_until(function, event, invoked_by, Deadline::none()).await
    }

    /// How much of an invocation a run may use (the settings these adapters were built from;
    /// the webhook function answers at once and has none of its own).
    pub fn invocation_limits(&self) -> crate::config::InvocationLimits {
        match self {
            Self::Workflows(services) => services.settings.invocation,
            Self::ItGlue(services) => services.settings.invocation,
            Self::UserOffboarding(services) => services.services.settings.invocation,
            Self::Webhook(_) => crate::config::InvocationLimits::default(),
        }
    }

    /// [`handle_until`] with these adapters. Never panics. Each arm's future is boxed: every
    /// workflow's is large, and unboxed this one would be as large as all of them together,
    /// more than a debug build's 2 MiB thread stack holds (a test's).
    pub async fn handle_until(&self, function: Function, event: Value, invoked_by: &str, deadline: Deadline) -> Answer {
        if function == Function::Orchestrator {
            return Box::pin(orchestrator_event(self, event, invoked_by)).await;
        }
        self.handle_workflow(function, event, invoked_by, deadline).await
    }

    /// A workflow function's event (any function but the orchestrator, which runs the
    /// workflows through this, never through [`Self::handle_until`]: its future stays finite).
    pub async fn handle_workflow(
        &self,
        function: Function,
        event: Value,
        invoked_by: &str,
        deadline: Deadline,
    ) -> Answer {
        match self {
            Self::Workflows(services) => Box::pin(handle_until(function, services, event, invoked_by, deadline)).await,
            Self::ItGlue(services) if function == Function::DeleteItGlueOrg => {
                let deps = services.delete_org_deps();
                Box::pin(itglue_event(deps, &services.settings.itglue, event, invoked_by)).await
            }
            Self::UserOffboarding(services) if function == Function::OffboardUser => {
                Box::pin(offboard_user_event(services, event, invoked_by)).await
            }
            Self::UserOffboarding(services) => {
                Box::pin(handle_until(function, &services.services, event, invoked_by, deadline)).await
            }
            Self::Webhook(services) if function == Function::Webhook => Box::pin(webhook_event(services, event)).await,
            Self::Webhook(_) => webhook::refused_without_services(),
            Self::ItGlue(_) => {
                // A deployment fault (the binary and its adapters disagree), whatever the trigger.
                let error = OfframpError::configuration(format!("{function:?} was built with IT Glue's adapters only"));
                let payload =
                    json!({"success": false, "errors": [{"code": error.code(), "message": error.to_string()}]});
                let error = lambda_error(error.code().as_str(), &payload);
                Answer { payload, error: Some(error) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every report type answers through the one table: whatever the primary error, the
    /// proxy status is that code's `http_status`, for all four workflows alike.
    #[test]
    fn every_report_answers_with_its_primary_codes_status() {
        for &code in ErrorCode::ALL {
            let error = OfframpError::new(code, "x");
            let answers = [
                answer(Reply::Proxy, &ConfigDeactivationReport::failure(&error, None, None, false)),
                answer(Reply::Proxy, &ContactDeactivationReport::invalid(&error, "test")),
                answer(Reply::Proxy, &RollbackReport::invalid(&error)),
                answer(Reply::Proxy, &DeleteOrgReport::failed(code, "x")),
                answer(Reply::Proxy, &offboard_user::refused(&error)),
            ];
            for out in answers {
                assert_eq!(out["statusCode"], code.http_status(), "{code}: {out}");
                let has_retry = out["headers"].get("retry-after").is_some();
                assert_eq!(has_retry, code == ErrorCode::RequestBudgetExhausted, "{code}: {out}");
            }
        }
        // A direct invoke gets the report itself.
        let report = RollbackReport::invalid(&OfframpError::invalid_input("x"));
        assert_eq!(answer(Reply::Report, &report)["errors"][0]["code"], "InvalidInput");
    }

    /// A trigger other than API Gateway gets a Lambda error named by the primary code, its
    /// message a JSON object with the error's message and the operation; a plan waiting for
    /// a confirmation is an answer; an API caller never gets a Lambda error, only the status.
    #[test]
    fn a_failed_run_is_a_lambda_error_except_behind_api_gateway() {
        let id = Some("0190c3a0-0000-7000-8000-000000000001".to_string());
        let failed =
            ConfigDeactivationReport::failure(&OfframpError::new(ErrorCode::PlanChanged, "stale"), None, id, false);
        let direct = answer(Reply::Report, &failed);
        let error = direct.error.clone().expect("a Lambda error");
        assert_eq!(error.error_type, "PlanChanged");
        let message: Value = serde_json::from_str(&error.error_message).unwrap();
        assert_eq!(message, json!({"message": "stale", "operation_id": "0190c3a0-0000-7000-8000-000000000001"}));
        assert_eq!(direct["errors"][0]["code"], "PlanChanged", "the report is kept: {direct}");
        assert_eq!(answer(Reply::Proxy, &failed).error, None);
        assert_eq!(answer(Reply::Proxy, &failed)["statusCode"], 409);

        let unconfirmed = OfframpError::new(ErrorCode::ConfirmationRequired, "confirm");
        assert_eq!(answer(Reply::Report, &ContactDeactivationReport::invalid(&unconfirmed, "t")).error, None);
        let partial = RollbackReport::invalid(&OfframpError::new(ErrorCode::ConfigUpdateFailed, "one failed"));
        assert_eq!(answer(Reply::Report, &partial).error_type(), Some("ConfigUpdateFailed"));
        // Stopped at the deadline: the report with its continuation, for the chain's `Choice`.
        let paused = ConfigDeactivationReport::failure(&crate::operation::Deadline::none().stop(), None, None, false);
        assert_eq!(answer(Reply::Report, &paused).error, None);
        assert_eq!(answer(Reply::Proxy, &paused)["statusCode"], 202);
        let done = ConfigDeactivationReport::failure(&unconfirmed, None, None, false);
        let done = ConfigDeactivationReport { success: true, errors: Vec::new(), ..done };
        assert_eq!(answer(Reply::Report, &done).error, None);
    }

    /// A spent budget answers 429 with the vendor's reset time as `Retry-After`, and a
    /// conservative hour when the message does not say.
    #[test]
    fn a_spent_budget_answers_429_with_retry_after() {
        let spent = crate::http::HttpError::BudgetExhausted {
            vendor: "autotask",
            limit: 9000,
            window: std::time::Duration::from_secs(3600),
            resets_in: std::time::Duration::from_secs(742),
        };
        let error = OfframpError::from(crate::error::PsaError::from_http(spent));
        let out = answer(Reply::Proxy, &ConfigDeactivationReport::failure(&error, None, None, false));
        assert_eq!(out["statusCode"], 429, "{out}");
        assert_eq!(out["headers"]["retry-after"], "742", "{out}");
        let vague = OfframpError::new(ErrorCode::RequestBudgetExhausted, "spent");
        let out = answer(Reply::Proxy, &ConfigDeactivationReport::failure(&vague, None, None, false));
        assert_eq!(out["headers"]["retry-after"], RETRY_AFTER_FALLBACK_SECONDS.to_string(), "{out}");
    }
}
