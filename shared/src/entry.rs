//! Entry-point logic shared by the Lambda functions: recognise the trigger, run the
//! workflow, shape the answer. Kept out of the binaries so tests drive it directly
//! with the files in `events/`.
//!
//! Triggers of `deactivate-configs`:
//! - direct invoke / Step Functions: the event *is* the request (workflow 000 input,
//!   docs/workflows.md#000-inputs);
//! - API Gateway proxy (REST or HTTP API): the request is the JSON `body`; the answer
//!   is a proxy response whose body is the report;
//! - EventBridge schedule (`source: aws.events`, `detail-type: Scheduled Event`): the
//!   sweep over every offboarded client; `detail` may carry `dry_run` and
//!   `offboarded_statuses` to override the configured statuses (the other criteria stay).
//!
//! Every API Gateway answer takes its HTTP status from one place: the report's
//! [`Outcome`], i.e. 200 on success, else the primary error's row of the
//! [`ErrorCode`] table (`ErrorCode::http_status`). A spent request budget (429) carries
//! `Retry-After`.

use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::Services;
use crate::error::{ErrorCode, OfframpError, Outcome, budget_resets_in_seconds};
use crate::ports::{NoProgress, SettingsStore};
use crate::workflows::deactivate_configs::{
    ConfigDeactivationOptions, ConfigDeactivationReport, DeactivateConfigsRequest, Deps, deactivate_configs,
};
use crate::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};
use crate::workflows::delete_itglue_org::{
    DeleteOrgDeps, DeleteOrgOptions, DeleteOrgReport, DeleteOrgRequest, cleanup_offboarded_organizations,
    delete_itglue_org,
};
use crate::workflows::rollback::{RollbackDeps, RollbackReport, RollbackRequest, rollback};
use crate::workflows::sweep::sweep_offboarded_clients;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Direct,
    ApiGateway,
    Schedule,
}

pub fn trigger_of(event: &Value) -> Trigger {
    if event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
    {
        Trigger::Schedule
    } else if event.get("requestContext").is_some() && event.get("body").is_some() {
        Trigger::ApiGateway
    } else {
        Trigger::Direct
    }
}

/// The Lambda functions, one per workflow (and rollback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    DeactivateConfigs,
    DeactivateContacts,
    Rollback,
    DeleteItGlueOrg,
}

/// Hand one event to `function`'s handler.
pub async fn handle(function: Function, services: &Services, event: Value, invoked_by: &str) -> Value {
    match function {
        Function::DeactivateConfigs => deactivate_configs_event(services, event, invoked_by).await,
        Function::DeactivateContacts => deactivate_contacts_event(services, event, invoked_by).await,
        Function::Rollback => rollback_event(services, event, invoked_by).await,
        Function::DeleteItGlueOrg => delete_itglue_org_event(services, event, invoked_by).await,
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

/// The answer to `event`: for API Gateway a proxy response whose status is the report's
/// [`Outcome::http_status`]; for a direct invoke the report itself.
fn answer<R: Outcome + Serialize>(event: &Value, report: &R) -> Value {
    let body = serde_json::to_value(report).unwrap_or_default();
    if trigger_of(event) != Trigger::ApiGateway {
        return body;
    }
    let status = report.http_status();
    let mut headers = json!({ "content-type": "application/json" });
    if status == ErrorCode::RequestBudgetExhausted.http_status() {
        headers["retry-after"] = json!(retry_after_seconds(&body).to_string());
    }
    json!({
        "statusCode": status,
        "headers": headers,
        "isBase64Encoded": false,
        "body": body.to_string(),
    })
}

/// The request a trigger carries: the event itself, or an API Gateway proxy body.
fn request_of<T: serde::de::DeserializeOwned>(event: &Value) -> Result<T, String> {
    if trigger_of(event) == Trigger::ApiGateway {
        let body = event.get("body").and_then(Value::as_str).unwrap_or_default();
        let body = if event.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| "body is not valid base64")?;
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            body.to_string()
        };
        serde_json::from_str(&body).map_err(|e| format!("request body: {e}"))
    } else {
        serde_json::from_value(event.clone()).map_err(|e| format!("request: {e}"))
    }
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

fn deps(services: &Services) -> Deps<'_> {
    Deps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        progress: &NoProgress,
        options: ConfigDeactivationOptions {
            concurrency: services.settings.workflow_concurrency,
            guard_settings: Some(config_guard(services)),
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

/// Handle one `deactivate-configs` invocation. Never panics; every outcome is JSON.
pub async fn deactivate_configs_event(services: &Services, event: Value, invoked_by: &str) -> Value {
    if trigger_of(&event) == Trigger::Schedule {
        let detail = event.get("detail").cloned().unwrap_or(Value::Null);
        let dry_run = detail.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
        let mut criteria = services.settings.offboarded.clone();
        if let Some(list) = detail.get("offboarded_statuses").and_then(Value::as_array) {
            criteria.statuses = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
        }
        let rule = event.pointer("/resources/0").and_then(Value::as_str).unwrap_or("schedule");
        let deps = deps(services);
        let report = sweep_offboarded_clients(&deps, &criteria, dry_run, &format!("schedule:{rule}")).await;
        return serde_json::to_value(report).unwrap_or_default();
    }
    let report = match request_of::<DeactivateConfigsRequest>(&event) {
        Ok(mut request) => {
            if request.initiated_by.is_none() {
                request.initiated_by = Some(invoked_by.to_string());
            }
            deactivate_configs(&deps(services), request).await
        }
        Err(message) => ConfigDeactivationReport::failure(&OfframpError::invalid_input(message), None, None, false),
    };
    answer(&event, &report)
}

/// Handle one `deactivate-contacts` invocation (workflow 001,
/// docs/workflows.md#001-contact-deactivation): direct invoke / Step Functions (the event is the
/// request), or API Gateway (the body is). Never panics.
pub async fn deactivate_contacts_event(services: &Services, event: Value, invoked_by: &str) -> Value {
    let report = match request_of::<DeactivateContactsRequest>(&event) {
        Ok(mut request) => {
            if request.initiated_by.is_none() {
                request.initiated_by = Some(invoked_by.to_string());
            }
            let deps = ContactDeps {
                psa: services.psa.as_ref(),
                audit: services.audit.as_ref(),
                settings: services.org_settings.as_ref(),
                notifier: services.notifier.as_deref(),
                progress: &NoProgress,
                concurrency: services.settings.workflow_concurrency,
            };
            deactivate_contacts(&deps, request).await
        }
        Err(message) => ContactDeactivationReport::invalid(&OfframpError::invalid_input(message), invoked_by),
    };
    answer(&event, &report)
}

/// Handle one `rollback` invocation: `{"operation_id", "dry_run"?, "reason"?}`. Never panics.
pub async fn rollback_event(services: &Services, event: Value, invoked_by: &str) -> Value {
    let report = match request_of::<RollbackRequest>(&event) {
        Ok(mut request) => {
            if request.initiated_by.is_none() {
                request.initiated_by = Some(invoked_by.to_string());
            }
            let deps = RollbackDeps {
                psa: services.psa.as_ref(),
                audit: services.audit.as_ref(),
                registry: crate::workflows::restorers(),
            };
            rollback(&deps, request).await
        }
        Err(message) => RollbackReport::invalid(&OfframpError::invalid_input(message)),
    };
    answer(&event, &report)
}

/// Handle one `delete-itglue-org` invocation (workflow 002,
/// docs/workflows.md#002-it-glue-organization-deletion): direct invoke / Step Functions /
/// API Gateway carry the workflow's request; the EventBridge schedule runs the cleanup of
/// organizations whose PSA company has been offboarded long enough (`detail.dry_run` and
/// `detail.offboarded_days` may override). Never panics.
pub async fn delete_itglue_org_event(services: &Services, event: Value, invoked_by: &str) -> Value {
    let Some(docs) = services.docs.as_deref() else {
        let report =
            DeleteOrgReport::failed(ErrorCode::ConfigurationError, "IT Glue is not configured (ITGLUE_API_KEY)");
        return answer(&event, &report);
    };
    let itglue = &services.settings.itglue;
    let deps = DeleteOrgDeps {
        docs,
        audit: services.audit.as_ref(),
        psa: Some(services.psa.as_ref()),
        options: DeleteOrgOptions::from_settings(&services.settings),
    };
    if trigger_of(&event) == Trigger::Schedule {
        let detail = event.get("detail").cloned().unwrap_or(Value::Null);
        let dry_run = detail.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
        let days = detail.get("offboarded_days").and_then(Value::as_u64).unwrap_or(itglue.offboarded_days);
        let rule = event.pointer("/resources/0").and_then(Value::as_str).unwrap_or("schedule");
        let report = cleanup_offboarded_organizations(&deps, days, dry_run, &format!("schedule:{rule}")).await;
        return serde_json::to_value(report).unwrap_or_default();
    }
    let report = match request_of::<DeleteOrgRequest>(&event) {
        Ok(mut request) => {
            if request.initiated_by.is_none() {
                request.initiated_by = Some(invoked_by.to_string());
            }
            delete_itglue_org(&deps, request).await
        }
        Err(message) => DeleteOrgReport::failed(ErrorCode::InvalidInput, message),
    };
    answer(&event, &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_recognised() {
        assert_eq!(trigger_of(&json!({"source": "aws.events", "detail-type": "Scheduled Event"})), Trigger::Schedule);
        assert_eq!(trigger_of(&json!({"requestContext": {}, "body": "{}"})), Trigger::ApiGateway);
        assert_eq!(trigger_of(&json!({"client_id": "1"})), Trigger::Direct);
        // An event from another source is not a schedule: it is parsed (and rejected) as a request.
        assert_eq!(trigger_of(&json!({"source": "aws.s3", "detail-type": "Object Created"})), Trigger::Direct);
    }

    fn api_event() -> Value {
        json!({"requestContext": {}, "body": "{}"})
    }

    /// Every report type answers through the one table: whatever the primary error, the
    /// proxy status is that code's `http_status`, for all four workflows alike.
    #[test]
    fn every_report_answers_with_its_primary_codes_status() {
        for &code in ErrorCode::ALL {
            let error = OfframpError::new(code, "x");
            let answers = [
                answer(&api_event(), &ConfigDeactivationReport::failure(&error, None, None, false)),
                answer(&api_event(), &ContactDeactivationReport::invalid(&error, "test")),
                answer(&api_event(), &RollbackReport::invalid(&error)),
                answer(&api_event(), &DeleteOrgReport::failed(code, "x")),
            ];
            for out in answers {
                assert_eq!(out["statusCode"], code.http_status(), "{code}: {out}");
                let has_retry = out["headers"].get("retry-after").is_some();
                assert_eq!(has_retry, code == ErrorCode::RequestBudgetExhausted, "{code}: {out}");
            }
        }
        // A direct invoke gets the report itself.
        let report = RollbackReport::invalid(&OfframpError::invalid_input("x"));
        assert_eq!(answer(&json!({"operation_id": "x"}), &report)["errors"][0]["code"], "InvalidInput");
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
        let out = answer(&api_event(), &ConfigDeactivationReport::failure(&error, None, None, false));
        assert_eq!(out["statusCode"], 429, "{out}");
        assert_eq!(out["headers"]["retry-after"], "742", "{out}");
        let vague = OfframpError::new(ErrorCode::RequestBudgetExhausted, "spent");
        let out = answer(&api_event(), &ConfigDeactivationReport::failure(&vague, None, None, false));
        assert_eq!(out["headers"]["retry-after"], RETRY_AFTER_FALLBACK_SECONDS.to_string(), "{out}");
    }
}
