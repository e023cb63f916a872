//! Exchange Online's InvokeCommand (docs/vendors/exchange-online.md), below [`super::EXO_PREFIX`]:
//! `POST /adminapi/beta/{tenantId}/InvokeCommand` with
//! `{"CmdletInput":{"CmdletName","Parameters"}}` → 200 `{"@odata.context","value":[…]}`
//! (plus `"@adminapi.warnings":[…]` when a write changed nothing).
//!
//! - Auth: `Authorization: Bearer` with a token for `https://outlook.office365.com/.default`
//!   of THIS tenant (id or domain in the path). Missing, unknown, a Graph token, or another
//!   tenant's token → 401 with `WWW-Authenticate: Bearer` and the error JSON below (code
//!   `InvalidAuthenticationToken`; UNCONFIRMED shape). `X-AnchorMailbox` is not checked.
//! - Errors: `{"error":{"code","message","details":[{"message":"Exception|Category|Message","target":""}],
//!   "innererror":{"type","internalException":{"message"}}}}`; an object that does not exist
//!   → 404, any other refusal → 400 (statuses UNCONFIRMED).
//! - Cmdlets: see `exchange_cmdlets.rs`. Unknown cmdlet → 400 `CommandNotFoundException`;
//!   an unknown parameter → 400 `ParameterBindingException` (`Confirm` is accepted and ignored).
//! - Stats keys `POST /exo/adminapi/beta/InvokeCommand` and `POST /exo/InvokeCommand/{CmdletName}`.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::Resource;
use super::exchange_cmdlets;
use super::graph::split_path;
use crate::{Shared, json_status};

/// A refused cmdlet.
#[derive(Debug, Clone)]
pub(crate) struct ExoError {
    pub status: StatusCode,
    pub exception: &'static str,
    pub category: &'static str,
    pub message: String,
}

impl ExoError {
    pub fn not_found(identity: &str) -> ExoError {
        ExoError {
            status: StatusCode::NOT_FOUND,
            exception: "ManagementObjectNotFoundException",
            category: "NotSpecified",
            message: format!(
                "The operation couldn't be performed because object '{identity}' couldn't be found on the server."
            ),
        }
    }

    pub fn invalid(exception: &'static str, message: String) -> ExoError {
        ExoError { status: StatusCode::BAD_REQUEST, exception, category: "InvalidArgument", message }
    }

    /// A write to an attribute mastered on-premises (docs/vendors/exchange-online.md#synced-recipients).
    pub fn write_scope(cmdlet: &str, parameter: &str, identity: &str) -> ExoError {
        ExoError {
            status: StatusCode::BAD_REQUEST,
            exception: "TaskInvalidOperationException",
            category: "InvalidOperation",
            message: format!(
                "The operation on mailbox \"{identity}\" failed because it's out of the current user's write scope. The action '{cmdlet}', '{parameter}', can't be performed on the object '{identity}' because the object is being synchronized from your on-premises organization. This action should be performed on the object in your on-premises organization."
            ),
        }
    }

    pub fn into_response(self) -> Response {
        let detail = format!("{}|{}|{}", self.exception, self.category, self.message);
        json_status(
            self.status,
            &json!({"error": {
                "code": self.exception,
                "message": format!("|Microsoft.Exchange.{}|{}", self.exception, self.message),
                "details": [{"message": detail, "target": ""}],
                "innererror": {"type": format!("Microsoft.Exchange.{}", self.exception),
                    "internalException": {"message": self.message}},
            }}),
        )
    }
}

/// What a cmdlet returns: its objects and any warnings.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub value: Vec<Value>,
    pub warnings: Vec<String>,
}

/// Cmdlet parameters, names ignoring case.
pub(crate) struct Params<'a>(pub &'a Map<String, Value>);

impl Params<'_> {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn str(&self, name: &str) -> Option<String> {
        self.get(name).and_then(Value::as_str).map(str::to_string)
    }

    /// A required string parameter.
    pub fn required(&self, name: &str) -> Result<String, ExoError> {
        self.str(name).filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ExoError::invalid(
                "ParameterBindingException",
                format!("Cannot process command because of one or more missing mandatory parameters: {name}."),
            )
        })
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ExoError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ExoError::invalid(
                "ParameterBindingException",
                format!(
                    "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.Boolean\"."
                ),
            )),
        }
    }

    /// A list parameter sent as an array or a single string.
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
            _ => Vec::new(),
        }
    }

    /// Refuses any parameter not in `known` (`Confirm` is always allowed).
    pub fn only(&self, known: &[&str]) -> Result<(), ExoError> {
        match self
            .0
            .keys()
            .find(|k| !k.eq_ignore_ascii_case("Confirm") && !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
        {
            Some(unknown) => Err(ExoError::invalid(
                "ParameterBindingException",
                format!("A parameter cannot be found that matches parameter name '{unknown}'."),
            )),
            None => Ok(()),
        }
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = json_status(
        StatusCode::UNAUTHORIZED,
        &json!({"error": {"code": "InvalidAuthenticationToken", "message": message}}),
    );
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", error=\"invalid_token\""),
    );
    response
}

/// The tenant id the request may act in, or the 401.
fn authorize(shared: &Shared, headers: &HeaderMap, path_tenant: &str) -> Result<String, Box<Response>> {
    let unauthorized = |message: &str| Box::new(unauthorized(message));
    let token = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| unauthorized("The access token is missing."))?;
    let issued =
        shared.m365.tokens.lookup(token).ok_or_else(|| unauthorized("The access token is invalid or expired."))?;
    if issued.resource != Resource::Exchange {
        return Err(unauthorized("The audience of the access token is not https://outlook.office365.com."));
    }
    let state = shared.m365.state();
    let tenant = state.tenant_key(path_tenant);
    if tenant.as_deref() != Some(issued.tenant_id.as_str()) {
        return Err(unauthorized("The access token was issued for another tenant."));
    }
    if !state.tenants.get(&issued.tenant_id).is_some_and(|t| t.consented) {
        return Err(unauthorized("The identity of the calling application could not be established."));
    }
    Ok(issued.tenant_id)
}

fn exo_status(status: StatusCode, exception: &'static str, message: &str) -> Response {
    ExoError { status, exception, category: "InvalidOperation", message: message.to_string() }.into_response()
}

/// A request below `/exo`.
pub(crate) fn route(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let segments = split_path(path);
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let path_tenant = match lower.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["adminapi", "beta", _, "invokecommand"] => segments[2].clone(),
        _ => return exo_status(StatusCode::NOT_FOUND, "NotFound", "The requested resource does not exist."),
    };
    if method != Method::POST {
        return exo_status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "InvokeCommand takes POST only.");
    }
    shared.record_route(method, "/exo/adminapi/beta/InvokeCommand");
    let tenant = match authorize(shared, headers, &path_tenant) {
        Ok(tenant) => tenant,
        Err(response) => return *response,
    };
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (Some(name), parameters) =
        (input["CmdletInput"]["CmdletName"].as_str(), input["CmdletInput"]["Parameters"].as_object())
    else {
        return exo_status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The body must be {\"CmdletInput\":{\"CmdletName\",\"Parameters\"}}.",
        );
    };
    let empty = Map::new();
    let params = Params(parameters.unwrap_or(&empty));
    shared.record_route(method, &format!("/exo/InvokeCommand/{name}"));
    match exchange_cmdlets::run(shared, &tenant, name, &params) {
        Ok(outcome) => {
            let mut answer = json!({
                "@odata.context": format!("https://outlook.office365.com/adminapi/beta/{tenant}/$metadata#Collection(Exchange.GenericHashTable)"),
                "value": outcome.value,
            });
            if !outcome.warnings.is_empty() {
                answer["@adminapi.warnings"] = json!(outcome.warnings);
            }
            json_status(StatusCode::OK, &answer)
        }
        Err(error) => error.into_response(),
    }
}

/// An injected fault or a limit in Exchange's error shape.
pub(crate) fn fault(status: StatusCode, message: &str) -> Response {
    let exception = if status == StatusCode::TOO_MANY_REQUESTS { "TooManyRequests" } else { "ServiceUnavailable" };
    exo_status(status, exception, message)
}
