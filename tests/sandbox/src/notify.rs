//! Notification services (issue 4): the Microsoft Entra token endpoint, Microsoft Graph `sendMail`,
//! and incoming webhooks (Teams/Slack style), after docs/vendors/microsoft-graph.md (#token,
//! #errors, #throttling, #sendmail). Credentials are the fake constants below, re-exported from the
//! crate root. Every accepted message is recorded for tests ([`crate::Sandbox::sent_mail`],
//! [`crate::Sandbox::webhook_posts`]).
//!
//! # Entra ID, prefix [`ENTRA_PREFIX`] = `/entra` ([`crate::Sandbox::entra_url`], the authority)
//! - `POST /{tenant}/oauth2/v2.0/token`, form `client_id`, `client_secret`, `scope`,
//!   `grant_type=client_credentials` → `{"token_type":"Bearer","expires_in":3599,
//!   "ext_expires_in":3599,"access_token"}` (opaque tokens, valid 3599 s, revocable with
//!   [`NotifySim::revoke_tokens`]). `{tenant}` is [`GRAPH_TENANT_ID`] or [`GRAPH_TENANT_DOMAIN`]
//!   (ignoring case). Errors are OAuth JSON `{"error","error_description":"AADSTS…: …",
//!   "error_codes":[n],"timestamp","trace_id","correlation_id"}`: unknown tenant → 400
//!   `invalid_request` (AADSTS90002); a missing parameter → 400 `invalid_request` (AADSTS900144);
//!   another grant → 400 `unsupported_grant_type` (AADSTS70003); unknown client id → 400
//!   `unauthorized_client` (AADSTS700016); a scope other than
//!   `https://graph.microsoft.com/.default` → 400 `invalid_scope` (AADSTS1002012); no secret → 401
//!   `invalid_client` (AADSTS7000216); wrong secret → 401 `invalid_client` (AADSTS7000215). These
//!   codes are Entra's usual ones, UNCONFIRMED in detail
//!   (docs/vendors/microsoft-graph.md#unconfirmed-points). Other paths → 404 `invalid_request`.
//!   Stats key `POST /entra/oauth2/v2.0/token`.
//!
//! # Microsoft Graph, prefix [`GRAPH_PREFIX`] = `/graph/v1.0` ([`crate::Sandbox::graph_url`])
//! Paths ignore case. Errors are `{"error":{"code","message","innerError":{"date",
//! "request-id","client-request-id"}}}` (docs/vendors/microsoft-graph.md#errors).
//! - Every request needs `Authorization: Bearer {token}` from the endpoint above: missing,
//!   unknown, revoked or expired → 401 `InvalidAuthenticationToken`.
//! - `POST /users/{id|upn}/sendMail` (docs/vendors/microsoft-graph.md#sendmail). Mailboxes (UPN
//!   ignoring case, or object id): [`GRAPH_SENDER`] (id [`GRAPH_SENDER_ID`]) may send;
//!   [`GRAPH_BLOCKED_SENDER`] exists but the app may not send as it (Exchange RBAC for
//!   Applications) → 403 `ErrorAccessDenied`; any other → 404 `ErrorInvalidUser`. Body: `message`
//!   must be an object; `subject` a string if present; `body`
//!   `{"contentType":"Text"|"HTML","content":string}`;
//!   `toRecipients`/`ccRecipients`/`bccRecipients` arrays of `{"emailAddress":{"address"}}`;
//!   `saveToSentItems` a boolean if present. A body that is not that → 400 `ErrorInvalidRequest`;
//!   no recipient at all or an address that is not one → 400 `ErrorInvalidRecipients`. Success →
//!   202 with an empty body, and the message is recorded as `{"sender": <the mailbox's UPN>,
//!   "message", "saveToSentItems"}`. Stats key `POST /graph/v1.0/users/sendMail` (counted once past
//!   auth).
//! - Other methods on `sendMail` → 405 `Request_BadRequest`; other paths → 400 `BadRequest`
//!   "Resource not found for the segment …", as Graph does.
//!
//! # Incoming webhooks, prefix [`HOOKS_PREFIX`] = `/hooks` ([`crate::Sandbox::webhook_url`])
//! - `POST /hooks/{token}`: the valid token is [`SANDBOX_WEBHOOK_TOKEN`]; any other → 404
//!   text `no_service` (as Slack and Teams answer for a deleted hook). The body must be a JSON
//!   object (else 400 `invalid_payload`) with a non-empty string `text` (else 400
//!   `no_text`); success → 200 text `1` (Teams' answer), the payload recorded as posted.
//!   Other methods → 405. Errors are plain text. Stats key `POST /hooks`.
//!
//! Fault injection, latency and the global rate limit apply as to the PSAs (the request goes
//! through the same `handle`). Injected errors use each service's shape: Graph
//! `{"error":{"code":"TooManyRequests"|"ServiceNotAvailable"|…,"message"}}` (429 with
//! `Retry-After: 1`, docs/vendors/microsoft-graph.md#throttling), Entra OAuth JSON
//! (`temporarily_unavailable`), webhooks plain text.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{Shared, json_response, json_status, text_status};

/// Path prefix of the Entra ID authority (`/{tenant}/oauth2/v2.0/token` below it).
pub const ENTRA_PREFIX: &str = "/entra";
/// Path prefix of Microsoft Graph v1.0.
pub const GRAPH_PREFIX: &str = "/graph/v1.0";
/// Path prefix of incoming webhooks.
pub const HOOKS_PREFIX: &str = "/hooks";

/// The MSP's own tenant, where the service mailbox lives.
pub const GRAPH_TENANT_ID: &str = "5d3e9c0a-7b21-4f4e-9a3c-6e1f0b8d2a47";
/// The same tenant by its domain name (Entra accepts either).
pub const GRAPH_TENANT_DOMAIN: &str = "msp.example";
pub const GRAPH_CLIENT_ID: &str = "c0ffee00-4b1d-4e5a-8c2f-9d7e6a5b4c31";
pub const GRAPH_CLIENT_SECRET: &str = "sbx~Graph.Secret_8Qf2-Zk7Lm4";
/// The service mailbox the app may send as.
pub const GRAPH_SENDER: &str = "offboarding@msp.example";
/// Object id of [`GRAPH_SENDER`].
pub const GRAPH_SENDER_ID: &str = "7a4b2c1d-0e9f-4a8b-b7c6-d5e4f3a2b1c0";
/// A mailbox that exists but that the app may not send as.
pub const GRAPH_BLOCKED_SENDER: &str = "blocked@msp.example";
/// The token of the one valid incoming webhook.
pub const SANDBOX_WEBHOOK_TOKEN: &str = "T0SBX5K3W/B0HOOK9Q2/wh7Kq2Zr9XbN4mP1sL6dF3gJ";

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const TOKEN_TTL: Duration = Duration::from_secs(3599);

/// (object id, UPN, may the app send as it)
const MAILBOXES: [(&str, &str, bool); 2] =
    [(GRAPH_SENDER_ID, GRAPH_SENDER, true), ("9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4", GRAPH_BLOCKED_SENDER, false)];

/// Tokens, and what was sent, reachable synchronously from tests.
#[derive(Default)]
pub struct NotifySim {
    tokens: Mutex<HashMap<String, Instant>>,
    tokens_issued: AtomicU64,
    sent_mail: Mutex<Vec<Value>>,
    webhook_posts: Mutex<Vec<Value>>,
    /// Every access token issued, in order (revoked or not).
    issued: Mutex<Vec<String>>,
    /// The accepted client secret; `None`: [`GRAPH_CLIENT_SECRET`].
    client_secret: Mutex<Option<String>>,
    /// Token requests per client secret presented.
    secrets_presented: Mutex<HashMap<String, u64>>,
}

impl NotifySim {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message `sendMail` accepted, oldest first: `{"sender","message","saveToSentItems"}`.
    pub fn sent_mail(&self) -> Vec<Value> {
        self.sent_mail.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every payload the webhook accepted, oldest first, as posted.
    pub fn webhook_posts(&self) -> Vec<Value> {
        self.webhook_posts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Entra access tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens_issued.load(Ordering::SeqCst)
    }

    /// Every token issued so far stops working (Graph answers 401).
    pub fn revoke_tokens(&self) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Every access token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// From now on only `new_secret` is accepted, and every token issued so far is revoked.
    pub fn rotate_client_secret(&self, new_secret: &str) {
        *self.client_secret.lock().unwrap_or_else(|e| e.into_inner()) = Some(new_secret.to_string());
        self.revoke_tokens();
    }

    /// How many token requests presented `secret`.
    pub fn token_requests_with_secret(&self, secret: &str) -> u64 {
        self.secrets_presented.lock().unwrap_or_else(|e| e.into_inner()).get(secret).copied().unwrap_or(0)
    }

    /// Counts the presented secret; whether it is the accepted one.
    fn accepts_secret(&self, secret: &str) -> bool {
        *self.secrets_presented.lock().unwrap_or_else(|e| e.into_inner()).entry(secret.to_string()).or_default() += 1;
        let accepted = self.client_secret.lock().unwrap_or_else(|e| e.into_inner());
        secret == accepted.as_deref().unwrap_or(GRAPH_CLIENT_SECRET)
    }

    fn issue_token(&self) -> String {
        let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let a = RandomState::new().hash_one((n, nanos));
        let b = RandomState::new().hash_one((a, n));
        let token = format!("eyJ0eXAiOiJKV1QiLCJzYngiOnRydWV9.{a:016x}{b:016x}");
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token.clone(), now + TOKEN_TTL);
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).push(token.clone());
        token
    }

    fn token_valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(token).is_some_and(|expiry| *expiry > Instant::now())
    }
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// An Entra OAuth error.
pub(crate) fn entra_error(status: StatusCode, error: &str, aadsts: u32, description: &str) -> Response {
    let id = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    json_status(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{aadsts}: {description} Trace ID: {id} Correlation ID: {id} Timestamp: {}Z", now_iso()),
            "error_codes": [aadsts],
            "timestamp": format!("{}Z", now_iso()),
            "trace_id": id,
            "correlation_id": id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={aadsts}"),
        }),
    )
}

/// An error of the Entra token endpoint for an injected fault or a limit.
pub(crate) fn entra_fault(status: StatusCode, message: &str) -> Response {
    let error = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        "temporarily_unavailable"
    } else {
        "invalid_request"
    };
    entra_error(status, error, 90033, message)
}

/// The body of a Graph error (docs/vendors/microsoft-graph.md#errors).
pub(crate) fn graph_error_json(code: &str, message: &str) -> Value {
    json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": now_iso(),
            "request-id": "4d2c1b0a-9f8e-4d7c-a6b5-c4d3e2f1a0b9",
            "client-request-id": "4d2c1b0a-9f8e-4d7c-a6b5-c4d3e2f1a0b9",
        },
    }})
}

/// A Graph error (docs/vendors/microsoft-graph.md#errors); 429 carries `Retry-After`
/// (docs/vendors/microsoft-graph.md#throttling).
pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = json_status(status, &graph_error_json(code, message));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// A Graph error for an injected fault or a limit, with the code Graph uses for the status.
pub(crate) fn graph_fault(status: StatusCode, message: &str) -> Response {
    let code = match status.as_u16() {
        429 => "TooManyRequests",
        401 => "InvalidAuthenticationToken",
        403 => "ErrorAccessDenied",
        404 => "ResourceNotFound",
        400 => "BadRequest",
        503 => "ServiceNotAvailable",
        504 => "GatewayTimeout",
        _ => "generalException",
    };
    graph_error(status, code, message)
}

/// `POST /entra/…` (`path` is below the prefix).
pub(crate) fn entra_route(shared: &Shared, method: &Method, path: &str, body: &Bytes) -> Response {
    let tenant = match token_path_tenant(method, path) {
        Ok(tenant) => tenant,
        Err(refusal) => return *refusal,
    };
    shared.record_route(method, "/entra/oauth2/v2.0/token");
    // A customer tenant of the MSP's multi-tenant app (src/m365/mod.rs#tokens).
    let customer = shared.m365.tenant_id(tenant);
    let msp_tenant = tenant.eq_ignore_ascii_case(GRAPH_TENANT_ID) || tenant.eq_ignore_ascii_case(GRAPH_TENANT_DOMAIN);
    if !msp_tenant && customer.is_none() {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let (client_id, scope) = match client_and_scope(&form) {
        Ok(found) => found,
        Err(refusal) => return *refusal,
    };
    let resource = crate::m365::Resource::from_scope(scope);
    let scope_ok = if customer.is_some() { resource.is_some() } else { scope.trim() == GRAPH_SCOPE };
    if !scope_ok {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    if let Some(refusal) = client_secret_refusal(&shared.notify, form.get("client_secret")) {
        return refusal;
    }
    let access_token = match (customer, resource) {
        (Some(customer), Some(resource)) => match shared.m365.issue_token(&customer, resource) {
            Ok(token) => token,
            Err(_) => return not_consented(client_id, tenant),
        },
        _ => shared.notify.issue_token(),
    };
    json_response(&json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL.as_secs(),
        "ext_expires_in": TOKEN_TTL.as_secs(),
        "access_token": access_token,
    }))
}

/// The tenant of `POST /{tenant}/oauth2/v2.0/token`; any other request is refused.
/// (The refusal is boxed: a `Response` is large for an `Err`.)
fn token_path_tenant<'a>(method: &Method, path: &'a str) -> Result<&'a str, Box<Response>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", [tenant, oauth2, version, token])
            if oauth2.eq_ignore_ascii_case("oauth2")
                && version.eq_ignore_ascii_case("v2.0")
                && token.eq_ignore_ascii_case("token") =>
        {
            Ok(*tenant)
        }
        _ => Err(Box::new(entra_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        ))),
    }
}

/// The form's client id and scope, after its grant type and client id are checked.
fn client_and_scope(form: &HashMap<String, String>) -> Result<(&str, &str), Box<Response>> {
    let missing = |name: &str| {
        Box::new(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        ))
    };
    match form.get("grant_type").map(String::as_str) {
        None => return Err(missing("grant_type")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(Box::new(entra_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            )));
        }
    }
    let Some(client_id) = form.get("client_id") else { return Err(missing("client_id")) };
    if !client_id.eq_ignore_ascii_case(GRAPH_CLIENT_ID) {
        return Err(Box::new(entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{GRAPH_TENANT_DOMAIN}'."
            ),
        )));
    }
    let Some(scope) = form.get("scope") else { return Err(missing("scope")) };
    Ok((client_id, scope))
}

/// Entra's refusal of a missing or wrong client secret (it echoes a wrong one), if any.
fn client_secret_refusal(sim: &NotifySim, secret: Option<&String>) -> Option<Response> {
    match secret {
        None => Some(entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )),
        Some(secret) if !sim.accepts_secret(secret) => Some(entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided ('{secret}'). Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{GRAPH_CLIENT_ID}'."
            ),
        )),
        Some(_) => None,
    }
}

/// A customer tenant where the app has no consented service principal.
fn not_consented(client_id: &str, tenant: &str) -> Response {
    entra_error(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
        ),
    )
}

/// A request below `/graph/v1.0`.
pub(crate) fn graph_route(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let sim = &shared.notify;
    let bearer = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match bearer {
        None => return graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty."),
        Some(token) if !sim.token_valid(token) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                &format!("Lifetime validation failed, the token is expired: {token}"),
            );
        }
        Some(_) => {}
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let user = match segments.as_slice() {
        [users, user, send] if users.eq_ignore_ascii_case("users") && send.eq_ignore_ascii_case("sendMail") => {
            percent_decode(user)
        }
        _ => {
            let segment = segments.last().copied().unwrap_or_default();
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Resource not found for the segment '{segment}'."),
            );
        }
    };
    if method != Method::POST {
        return graph_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        );
    }
    shared.record_route(method, "/graph/v1.0/users/sendMail");
    let Some((_, upn, may_send)) =
        MAILBOXES.iter().find(|(id, upn, _)| user.eq_ignore_ascii_case(id) || user.eq_ignore_ascii_case(upn))
    else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{user}' is invalid."),
        );
    };
    if !may_send {
        return graph_error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
    }
    let input: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidRequest",
                &format!("The request body is not valid JSON: {e}"),
            );
        }
    };
    if let Err(response) = check_send_mail(&input) {
        return *response;
    }
    let record = json!({
        "sender": upn,
        "message": input["message"],
        "saveToSentItems": input.get("saveToSentItems").cloned().unwrap_or(json!(true)),
    });
    sim.sent_mail.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    StatusCode::ACCEPTED.into_response()
}

/// The `sendMail` body rules of the module doc.
fn check_send_mail(input: &Value) -> Result<(), Box<Response>> {
    let invalid = |what: &str| Box::new(graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidRequest", what));
    let message = input.get("message").filter(|m| m.is_object()).ok_or_else(|| invalid("The message is missing."))?;
    if input.get("saveToSentItems").is_some_and(|v| !v.is_boolean()) {
        return Err(invalid("Property 'saveToSentItems' must be a boolean."));
    }
    if message.get("subject").is_some_and(|s| !s.is_string() && !s.is_null()) {
        return Err(invalid("Property 'subject' must be a string."));
    }
    if let Some(body) = message.get("body") {
        let content_type = body.get("contentType").and_then(Value::as_str).unwrap_or("Text");
        if !content_type.eq_ignore_ascii_case("text") && !content_type.eq_ignore_ascii_case("html") {
            return Err(invalid(&format!("Requested value '{content_type}' was not found (contentType).")));
        }
        if !body.get("content").is_some_and(Value::is_string) {
            return Err(invalid("Property 'content' of the body must be a string."));
        }
    }
    let mut count = 0;
    for field in ["toRecipients", "ccRecipients", "bccRecipients"] {
        let Some(list) = message.get(field) else { continue };
        let list = list.as_array().ok_or_else(|| invalid(&format!("Property '{field}' must be an array.")))?;
        for recipient in list {
            let address = recipient["emailAddress"]["address"].as_str().unwrap_or_default();
            let plausible = address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !address.contains(char::is_whitespace)
            });
            if !plausible {
                return Err(Box::new(graph_error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidRecipients",
                    &format!(
                        "At least one recipient is not valid., Recipient '{address}' is not resolved. All recipients must be resolved before a message can be submitted."
                    ),
                )));
            }
            count += 1;
        }
    }
    if count == 0 {
        return Err(Box::new(graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., A message can't be sent because it contains no recipients.",
        )));
    }
    Ok(())
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| segment.to_string())
}

/// A request below `/hooks`.
pub(crate) fn hook_route(shared: &Shared, method: &Method, path: &str, body: &Bytes) -> Response {
    if method != Method::POST {
        return text_status(StatusCode::METHOD_NOT_ALLOWED, "invalid_method");
    }
    shared.record_route(method, "/hooks");
    let token = path.trim_start_matches('/');
    if token != SANDBOX_WEBHOOK_TOKEN {
        return text_status(StatusCode::NOT_FOUND, "no_service");
    }
    let Ok(payload @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return text_status(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if payload.get("text").and_then(Value::as_str).is_none_or(|t| t.trim().is_empty()) {
        return text_status(StatusCode::BAD_REQUEST, "no_text");
    }
    shared.notify.webhook_posts.lock().unwrap_or_else(|e| e.into_inner()).push(payload);
    text_status(StatusCode::OK, "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sandbox, SandboxConfig};

    async fn sandbox() -> Sandbox {
        Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
    }

    async fn token_request(sb: &Sandbox, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = reqwest::Client::new()
            .post(format!("{}/{tenant}/oauth2/v2.0/token", sb.entra_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    const GOOD: [(&str, &str); 4] = [
        ("client_id", GRAPH_CLIENT_ID),
        ("client_secret", GRAPH_CLIENT_SECRET),
        ("scope", GRAPH_SCOPE),
        ("grant_type", "client_credentials"),
    ];

    fn with(name: &str, value: &str) -> Vec<(String, String)> {
        GOOD.iter().map(|(k, v)| (k.to_string(), if *k == name { value.to_string() } else { v.to_string() })).collect()
    }

    async fn token(sb: &Sandbox) -> String {
        let (status, body) = token_request(sb, GRAPH_TENANT_ID, &GOOD).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn send_mail(sb: &Sandbox, token: Option<&str>, user: &str, body: &Value) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(format!("{}/users/{user}/sendMail", sb.graph_url())).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn mail() -> Value {
        json!({"message": {"subject": "S", "body": {"contentType": "Text", "content": "C"},
            "toRecipients": [{"emailAddress": {"address": "a@client.example"}}]}, "saveToSentItems": true})
    }

    #[tokio::test]
    async fn token_endpoint_checks_every_parameter() {
        let sb = sandbox().await;
        let (status, body) = token_request(&sb, GRAPH_TENANT_ID, &GOOD).await;
        assert_eq!(status, 200);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(token_request(&sb, &GRAPH_TENANT_DOMAIN.to_uppercase(), &GOOD).await.0, 200, "domain, any case");

        // (tenant, form, status, error, AADSTS code)
        type Case<'a> = (&'a str, Vec<(String, String)>, u16, &'a str, u64);
        let cases: Vec<Case> = vec![
            ("00000000-0000-0000-0000-000000000000", with("x", ""), 400, "invalid_request", 90002),
            (GRAPH_TENANT_ID, with("client_secret", "wrong"), 401, "invalid_client", 7000215),
            (GRAPH_TENANT_ID, with("client_id", "someone-else"), 400, "unauthorized_client", 700016),
            (GRAPH_TENANT_ID, with("scope", "https://outlook.office365.com/.default"), 400, "invalid_scope", 1002012),
            (GRAPH_TENANT_ID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003),
        ];
        for (tenant, form, status, error, code) in cases {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (got, body) = token_request(&sb, tenant, &pairs).await;
            assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{body}");
            assert_eq!(body["error_codes"], json!([code]), "{body}");
            assert!(body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}:")), "{body}");
            assert!(!body.to_string().contains(GRAPH_CLIENT_SECRET));
        }
        let without_secret: Vec<(&str, &str)> = GOOD.iter().copied().filter(|(k, _)| *k != "client_secret").collect();
        let (status, body) = token_request(&sb, GRAPH_TENANT_ID, &without_secret).await;
        assert_eq!((status, body["error_codes"].clone()), (401, json!([7000216])));
        let without_grant: Vec<(&str, &str)> = GOOD.iter().copied().filter(|(k, _)| *k != "grant_type").collect();
        let (status, body) = token_request(&sb, GRAPH_TENANT_ID, &without_grant).await;
        assert_eq!((status, body["error_codes"].clone()), (400, json!([900144])));
        assert_eq!(sb.notify().tokens_issued(), 2);
        assert_eq!(sb.stats().count("POST", "/entra/oauth2/v2.0/token"), 9);
    }

    #[tokio::test]
    async fn send_mail_checks_auth_mailbox_and_body() {
        let sb = sandbox().await;
        let token = token(&sb).await;

        let (status, body) = send_mail(&sb, None, GRAPH_SENDER, &mail()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")));
        let (status, _) = send_mail(&sb, Some("forged"), GRAPH_SENDER, &mail()).await;
        assert_eq!(status, 401);
        let (status, body) = send_mail(&sb, Some(&token), "nobody@msp.example", &mail()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("ErrorInvalidUser")));
        let (status, body) = send_mail(&sb, Some(&token), GRAPH_BLOCKED_SENDER, &mail()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("ErrorAccessDenied")));
        for bad in [
            json!({}),
            json!({"message": "x"}),
            json!({"message": {"body": {"contentType": "Rtf", "content": "x"},
            "toRecipients": [{"emailAddress": {"address": "a@client.example"}}]}}),
            json!({"message": {"toRecipients": {}}}),
        ] {
            let (status, body) = send_mail(&sb, Some(&token), GRAPH_SENDER, &bad).await;
            assert_eq!((status, body["error"]["code"].as_str()), (400, Some("ErrorInvalidRequest")), "{bad}");
        }
        for bad in [
            json!({"message": {"subject": "S"}}),
            json!({"message": {"toRecipients": [{"emailAddress": {"address": "not-an-address"}}]}}),
        ] {
            let (status, body) = send_mail(&sb, Some(&token), GRAPH_SENDER, &bad).await;
            assert_eq!((status, body["error"]["code"].as_str()), (400, Some("ErrorInvalidRecipients")), "{bad}");
        }
        assert!(sb.sent_mail().is_empty(), "nothing accepted yet");

        let (status, body) = send_mail(&sb, Some(&token), GRAPH_SENDER_ID, &mail()).await;
        assert_eq!((status, body), (202, Value::String(String::new())));
        let (status, _) = send_mail(&sb, Some(&token), "OffBoarding%40MSP.example", &mail()).await;
        assert_eq!(status, 202, "UPN ignoring case, percent-encoded");
        let sent = sb.sent_mail();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0], json!({"sender": GRAPH_SENDER, "message": mail()["message"], "saveToSentItems": true}));

        sb.notify().revoke_tokens();
        assert_eq!(send_mail(&sb, Some(&token), GRAPH_SENDER, &mail()).await.0, 401, "revoked");
        // The three 401s are not counted: the route counts requests past auth.
        assert_eq!(sb.stats().count("POST", "/graph/v1.0/users/sendMail"), 10);
    }

    #[tokio::test]
    async fn graph_faults_use_the_graph_shape() {
        let sb = sandbox().await;
        let token = token(&sb).await;
        sb.fail_next(1, 429);
        let response = reqwest::Client::new()
            .post(format!("{}/users/{GRAPH_SENDER}/sendMail", sb.graph_url()))
            .bearer_auth(&token)
            .json(&mail())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
        sb.fail_next(1, 503);
        let (status, body) = token_request(&sb, GRAPH_TENANT_ID, &GOOD).await;
        assert_eq!((status, body["error"].as_str()), (503, Some("temporarily_unavailable")));
    }

    #[tokio::test]
    async fn webhooks_accept_text_for_the_right_token_only() {
        let sb = sandbox().await;
        let client = reqwest::Client::new();
        let post = |url: String, body: &'static str| {
            let client = client.clone();
            async move {
                let response =
                    client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        assert_eq!(post(sb.webhook_url(), r#"{"text":"hello"}"#).await, (200, "1".to_string()));
        let wrong = format!("{}{HOOKS_PREFIX}/T0SBX5K3W/B0HOOK9Q2/wrong", sb.base_url());
        assert_eq!(post(wrong, r#"{"text":"hello"}"#).await, (404, "no_service".to_string()));
        assert_eq!(post(sb.webhook_url(), "not json").await, (400, "invalid_payload".to_string()));
        assert_eq!(post(sb.webhook_url(), r#"{"text":"  "}"#).await, (400, "no_text".to_string()));
        assert_eq!(sb.webhook_posts(), vec![json!({"text": "hello"})]);
        assert_eq!(sb.stats().count("POST", "/hooks"), 4);
    }
}
