//! Who is asking (docs/architecture.md#who-is-asking): the principal each trigger
//! authenticated, never a body field.
//!
//! | Trigger | Principal recorded as `initiated_by` |
//! |---|---|
//! | API Gateway REST (IAM) | `iam:` + `requestContext.identity.userArn` |
//! | API Gateway HTTP API (IAM) | `iam:` + `requestContext.authorizer.iam.userArn` |
//! | API Gateway HTTP API (JWT) | `jwt:` + the `sub` claim, with ` <email>` when the token has one |
//! | EventBridge schedule | `schedule:` + the rule's ARN |
//! | Step Functions task | `states:` + the execution ARN the state machine passes as `execution_arn` |
//! | the API function's asynchronous invoke | the principal the API authenticated (`api_principal`) |
//! | any other direct invoke | `lambda:` + the invoked function's ARN |
//!
//! A request's own `initiated_by` on any of these is kept only as who the run is *for*:
//! `"<principal> (on behalf of <name>)"` ([`initiator`]). An API event with no principal is
//! refused (`Unauthenticated`, 401) and starts nothing.
//!
//! A direct invoke's top-level `execution_arn`, `api_principal` and `assigned_operation_id`
//! are the caller's fields, not the workflow's: they are taken off the event before the
//! request is read (whose unknown fields are refused). Whoever may invoke a workflow's
//! function may run it anyway; these fields say which run of the state machine or of the API
//! it is, and the role that invokes is what IAM restricts (infra/template.yaml).

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, OfframpError};

/// The field a Step Functions task adds to its input: the execution's ARN (`$$.Execution.Id`).
pub const EXECUTION_ARN_FIELD: &str = "execution_arn";
/// The field the API function adds to an asynchronous invoke: the principal it authenticated.
pub const API_PRINCIPAL_FIELD: &str = "api_principal";
/// The field the API function adds to an asynchronous invoke: the operation id it answered with.
pub const ASSIGNED_OPERATION_ID_FIELD: &str = "assigned_operation_id";

/// Who is asking, and what the caller added to the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated principal; `None` for a direct invoke that named none (the entry
    /// then records the invoked function).
    pub principal: Option<String>,
    /// The operation id the API assigned to this run before it started it.
    pub assigned_operation_id: Option<String>,
}

impl Caller {
    /// Who a run is recorded as: the principal, else the invoked function (`lambda:<arn>`).
    pub fn principal_or<'a>(&'a self, invoked_by: &'a str) -> &'a str {
        self.principal.as_deref().unwrap_or(invoked_by)
    }
}

/// `initiated_by` as recorded: the principal, and the request's own name as who the run is
/// on behalf of (when it names someone other than the principal).
pub fn initiator(principal: &str, given: Option<String>) -> Option<String> {
    // Kept as given (not trimmed): the workflow checks the whole field, stray characters included.
    let on_behalf_of = given.filter(|g| !g.trim().is_empty() && g != principal);
    Some(match on_behalf_of {
        Some(name) => crate::domain::on_behalf_of_initiator(principal, &name),
        None => principal.to_string(),
    })
}

fn unauthenticated() -> OfframpError {
    OfframpError::new(
        ErrorCode::Unauthenticated,
        "the API request carries no authenticated principal (IAM SigV4, or a JWT with a sub claim); nothing was started",
    )
}

/// The principal of an HTTP API (payload 2.0) request: its IAM user ARN, else its JWT's claims.
pub fn http_api_principal(request: &ApiGatewayV2httpRequest) -> Result<String, OfframpError> {
    let authorizer = request.request_context.authorizer.as_ref();
    authorizer.and_then(authorizer_principal).ok_or_else(unauthenticated)
}

/// The principal of a REST API request (IAM authorization): `requestContext.identity.userArn`.
pub fn rest_api_principal(request: &ApiGatewayProxyRequest) -> Result<String, OfframpError> {
    let arn = request.request_context.identity.user_arn.as_deref().filter(|arn| arn.starts_with("arn:"));
    let from_authorizer = || authorizer_principal(&request.request_context.authorizer);
    arn.map(|arn| format!("iam:{arn}")).or_else(from_authorizer).ok_or_else(unauthenticated)
}

fn authorizer_principal(authorizer: &ApiGatewayRequestAuthorizer) -> Option<String> {
    let iam = authorizer.iam.as_ref().and_then(|iam| iam.user_arn.as_deref()).filter(|arn| arn.starts_with("arn:"));
    if let Some(arn) = iam {
        return Some(format!("iam:{arn}"));
    }
    let claims = &authorizer.jwt.as_ref()?.claims;
    let sub = claims.get("sub").map(|s| s.trim()).filter(|s| !s.is_empty())?;
    Some(match claims.get("email").map(|e| e.trim()).filter(|e| !e.is_empty()) {
        Some(email) => format!("jwt:{sub} <{email}>"),
        None => format!("jwt:{sub}"),
    })
}

/// Take the caller's fields off a direct invoke's event and say who is asking.
pub fn direct_caller(event: &mut Value) -> Result<Caller, OfframpError> {
    let Some(fields) = event.as_object_mut() else { return Ok(Caller::default()) };
    let execution = take_text(fields, EXECUTION_ARN_FIELD)?;
    let api = take_text(fields, API_PRINCIPAL_FIELD)?;
    let assigned_operation_id = take_text(fields, ASSIGNED_OPERATION_ID_FIELD)?;
    if let Some(id) = &assigned_operation_id
        && uuid::Uuid::parse_str(id).is_err()
    {
        return Err(OfframpError::invalid_input(format!("{ASSIGNED_OPERATION_ID_FIELD} '{id}' is not a UUID")));
    }
    let principal = match (execution, api) {
        (Some(_), Some(_)) => {
            let message = format!("an event names both {EXECUTION_ARN_FIELD} and {API_PRINCIPAL_FIELD}; one caller");
            return Err(OfframpError::invalid_input(message));
        }
        (Some(arn), None) if is_execution_arn(&arn) => Some(format!("states:{arn}")),
        (Some(arn), None) => {
            let message = format!("{EXECUTION_ARN_FIELD} '{arn}' is not a Step Functions execution ARN");
            return Err(OfframpError::invalid_input(message));
        }
        (None, Some(principal)) => Some(principal),
        (None, None) => None,
    };
    Ok(Caller { principal, assigned_operation_id })
}

/// `arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>` (standard
/// workflows; an express one says `express` instead of `execution`).
pub(super) fn is_execution_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() >= 8 && parts[0] == "arn" && parts[2] == "states" && matches!(parts[5], "execution" | "express")
}

fn take_text(fields: &mut Map<String, Value>, key: &str) -> Result<Option<String>, OfframpError> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() && text.len() <= 2048 => Ok(Some(text)),
        Some(_) => Err(OfframpError::invalid_input(format!("{key} must be a non-empty string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_name_is_only_who_the_run_is_for() {
        let by = |given: Option<&str>| initiator("iam:arn:aws:iam::1:user/ops", given.map(str::to_string));
        assert_eq!(by(None).as_deref(), Some("iam:arn:aws:iam::1:user/ops"));
        assert_eq!(by(Some("  ")).as_deref(), Some("iam:arn:aws:iam::1:user/ops"));
        assert_eq!(by(Some("alice")).as_deref(), Some("iam:arn:aws:iam::1:user/ops (on behalf of alice)"));
        assert_eq!(crate::domain::on_behalf_of(&by(Some("a@b.example")).unwrap()), Some("a@b.example"));
        assert_eq!(crate::domain::on_behalf_of("iam:arn:aws:iam::1:user/ops"), None);
    }

    #[test]
    fn a_direct_invoke_gives_up_its_caller_fields() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:client-offboarding:api-1";
        let mut event = json!({"client_id": "250", "execution_arn": arn});
        let caller = direct_caller(&mut event).unwrap();
        assert_eq!(caller.principal, Some(format!("states:{arn}")));
        assert_eq!(event, json!({"client_id": "250"}), "the request is left as the workflow reads it");
        for bad in [
            json!({"execution_arn": "arn:aws:lambda:us-east-1:1:function:x"}),
            json!({"execution_arn": 7}),
            json!({"assigned_operation_id": "not-a-uuid"}),
            json!({"execution_arn": arn, "api_principal": "iam:arn:aws:iam::1:user/x"}),
        ] {
            let mut event = bad.clone();
            assert_eq!(direct_caller(&mut event).unwrap_err().code(), ErrorCode::InvalidInput, "{bad}");
        }
        assert_eq!(direct_caller(&mut json!({"client_id": "1"})).unwrap(), Caller::default());
    }
}
