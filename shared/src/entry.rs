//! Entry-point logic shared by the Lambda functions: recognise the trigger, run the
//! workflow, shape the answer. Kept out of the binaries so tests drive it directly
//! with the files in `events/`.
//!
//! Triggers of `deactivate-configs`:
//! - direct invoke / Step Functions: the event *is* the request (seed 000 input);
//! - API Gateway proxy (REST or HTTP API): the request is the JSON `body`; the answer
//!   is a proxy response whose body is the report;
//! - EventBridge schedule (`source: aws.events`, `detail-type: Scheduled Event`): the
//!   sweep over every offboarded client; `detail` may carry `dry_run` and
//!   `offboarded_statuses` to override the configured statuses (the other criteria stay).

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::app::Services;
use crate::error::{ErrorCode, OfframpError};
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

fn invalid(message: String) -> ConfigDeactivationReport {
    ConfigDeactivationReport::failure(&OfframpError::invalid_input(message), None, None, false)
}

/// Handle one `deactivate-configs` invocation. Never panics; every outcome is JSON.
pub async fn deactivate_configs_event(services: &Services, event: Value, invoked_by: &str) -> Value {
    match trigger_of(&event) {
        Trigger::Schedule => {
            let detail = event.get("detail").cloned().unwrap_or(Value::Null);
            let dry_run = detail.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
            let mut criteria = services.settings.offboarded.clone();
            if let Some(list) = detail.get("offboarded_statuses").and_then(Value::as_array) {
                criteria.statuses = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
            }
            let rule = event.pointer("/resources/0").and_then(Value::as_str).unwrap_or("schedule");
            let deps = deps(services);
            let report = sweep_offboarded_clients(&deps, &criteria, dry_run, &format!("schedule:{rule}")).await;
            serde_json::to_value(report).unwrap_or_default()
        }
        Trigger::ApiGateway => {
            let body = event.get("body").and_then(Value::as_str).unwrap_or_default();
            let body = if event.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
                match base64::engine::general_purpose::STANDARD.decode(body) {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(_) => return proxy_response(&invalid("body is not valid base64".into())),
                }
            } else {
                body.to_string()
            };
            let report = match serde_json::from_str::<DeactivateConfigsRequest>(&body) {
                Ok(request) => run(services, request, invoked_by).await,
                Err(e) => invalid(format!("request body: {e}")),
            };
            proxy_response(&report)
        }
        Trigger::Direct => {
            let report = match serde_json::from_value::<DeactivateConfigsRequest>(event) {
                Ok(request) => run(services, request, invoked_by).await,
                Err(e) => invalid(format!("request: {e}")),
            };
            serde_json::to_value(report).unwrap_or_default()
        }
    }
}

async fn run(services: &Services, mut request: DeactivateConfigsRequest, invoked_by: &str) -> ConfigDeactivationReport {
    if request.initiated_by.is_none() {
        request.initiated_by = Some(invoked_by.to_string());
    }
    deactivate_configs(&deps(services), request).await
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

/// HTTP status for an API Gateway answer.
pub fn http_status(report: &ConfigDeactivationReport) -> u16 {
    if report.success {
        return 200;
    }
    match report.primary_error() {
        Some(ErrorCode::InvalidInput) => 400,
        Some(ErrorCode::PermissionDenied) => 403,
        Some(ErrorCode::ClientNotFound | ErrorCode::ConfigNotFound | ErrorCode::OperationNotResumable) => 404,
        Some(ErrorCode::ClientAmbiguous | ErrorCode::ClientNotOffboarded | ErrorCode::PlanChanged) => 409,
        Some(ErrorCode::PsaConnectionError) => 502,
        // Some items failed: the request was processed, the report says which.
        Some(ErrorCode::ConfigUpdateFailed) => 207,
        _ => 500,
    }
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

fn answer(event: &Value, status: u16, report: Value) -> Value {
    if trigger_of(event) == Trigger::ApiGateway {
        json!({
            "statusCode": status,
            "headers": { "content-type": "application/json" },
            "isBase64Encoded": false,
            "body": report.to_string(),
        })
    } else {
        report
    }
}

fn status_of(success: bool, code: Option<ErrorCode>) -> u16 {
    if success {
        return 200;
    }
    match code {
        Some(ErrorCode::InvalidInput) => 400,
        Some(ErrorCode::PermissionDenied) => 403,
        Some(ErrorCode::ClientNotFound | ErrorCode::OperationNotResumable) => 404,
        Some(
            ErrorCode::PlanChanged
            | ErrorCode::ConfirmationRequired
            | ErrorCode::BlastRadiusExceeded
            | ErrorCode::RollbackRefused,
        ) => 409,
        Some(ErrorCode::PsaConnectionError) => 502,
        Some(
            ErrorCode::ContactUpdateFailed
            | ErrorCode::RelatedUpdateFailed
            | ErrorCode::TicketUpdateFailed
            | ErrorCode::NotificationFailed
            | ErrorCode::ConfigUpdateFailed,
        ) => 207,
        _ => 500,
    }
}

/// Handle one `deactivate-contacts` invocation (seed 001): direct invoke / Step Functions
/// (the event is the request), or API Gateway (the body is). Never panics.
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
    let status = status_of(report.success, report.primary_error());
    answer(&event, status, serde_json::to_value(report).unwrap_or_default())
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
    let status = status_of(report.success, report.primary_error());
    answer(&event, status, serde_json::to_value(report).unwrap_or_default())
}

/// Handle one `delete-itglue-org` invocation (seed 002): direct invoke / Step Functions /
/// API Gateway carry the seed's request; the EventBridge schedule runs the cleanup of
/// organizations whose PSA company has been offboarded long enough (`detail.dry_run` and
/// `detail.offboarded_days` may override). Never panics.
pub async fn delete_itglue_org_event(services: &Services, event: Value, invoked_by: &str) -> Value {
    let Some(docs) = services.docs.as_deref() else {
        let report =
            DeleteOrgReport::failed(ErrorCode::ConfigurationError, "IT Glue is not configured (ITGLUE_API_KEY)");
        return answer(&event, 500, serde_json::to_value(report).unwrap_or_default());
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
    let status = match report.primary_error() {
        None => 200,
        Some(ErrorCode::OrganizationNotFound) => 404,
        Some(ErrorCode::InvalidIdentifier | ErrorCode::InvalidInput) => 400,
        Some(ErrorCode::PermissionDenied) => 403,
        Some(ErrorCode::DeletionBlocked | ErrorCode::ConfirmationRequired) => 409,
        Some(ErrorCode::ItGlueConnectionError) => 502,
        Some(_) => 500,
    };
    answer(&event, status, serde_json::to_value(report).unwrap_or_default())
}

fn proxy_response(report: &ConfigDeactivationReport) -> Value {
    json!({
        "statusCode": http_status(report),
        "headers": { "content-type": "application/json" },
        "isBase64Encoded": false,
        "body": serde_json::to_string(report).unwrap_or_default(),
    })
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
}
