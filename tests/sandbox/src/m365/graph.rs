//! Microsoft Graph v1.0 for customer tenants (docs/vendors/microsoft-graph.md#user-offboarding).
//! Paths ignore case; ids are object ids or UPNs (percent-encoded or not). Errors are
//! `{"error":{"code","message","innerError"}}`. Routes (stats key `"{METHOD} /graph/v1.0{template}"`):
//!
//! | Route | Template | Resource units |
//! |---|---|---|
//! | `GET /users` (`$filter` on licences, `$count`, `$top`, `$skiptoken`: [`super::graph_user_list`]) | `/users` | 2 |
//! | `GET /users/{id}` (`$select`) | `/users/{id}` | 1 |
//! | `PATCH /users/{id}` | `/users/{id}` | 1 + write |
//! | `GET /users/{id}/manager`, `DELETE`/`PUT /users/{id}/manager/$ref` | `/users/{id}/manager[/$ref]` | 1 |
//! | `GET /users/{id}/memberOf[/microsoft.graph.group]` (`$top`, `$skiptoken`) | `/users/{id}/memberOf` | 2 |
//! | `GET /users/{id}/ownedObjects` | `/users/{id}/ownedObjects` | 1 |
//! | `POST /users/{id}/revokeSignInSessions` | same | 1 + write |
//! | `POST /users/{id}/assignLicense` | same | 1 + write |
//! | `GET`/`PATCH /users/{id}/mailboxSettings` | same | 1 |
//! | `GET /groups/{id}`, `/groups/{id}/owners`, `/groups/{id}/members` | same | 1, 1, 3 |
//! | `POST /groups/{id}/members/$ref`, `DELETE /groups/{id}/members/{id}/$ref` | same | 1 + write |
//! | `DELETE /groups/{id}/members/{id}` (no `$ref`): DELETES THE USER, as Graph does | same | 1 + write |
//! | `POST /groups/{id}/owners/$ref`, `DELETE /groups/{id}/owners/{id}/$ref` | same | 1 + write |
//! | `GET /deviceManagement/managedDevices` (`$filter=userId eq '…'`) | same | 1 |
//! | `POST /deviceManagement/managedDevices/{id}/retire` | same | 1 + write |
//! | `GET /subscribedSkus` | same | 3 |
//! | `POST /$batch` | see [`super::batch`] | each inner request |
//!
//! `$select` takes one unit off (never below 1). A path Graph has with another method →
//! 405; any other path → 400 `BadRequest` "Resource not found for the segment …".

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::Resource;
use super::{batch, graph_groups, graph_user_list, graph_users};
use crate::Shared;
use crate::notify::graph_error_json;

/// A Graph answer, for a top-level request or one inside `$batch`.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Answer {
    pub fn json(status: StatusCode, body: Value) -> Answer {
        Answer { status, headers: vec![("Content-Type".into(), "application/json".into())], body: Some(body) }
    }

    pub fn ok(body: Value) -> Answer {
        Answer::json(StatusCode::OK, body)
    }

    pub fn no_content() -> Answer {
        Answer { status: StatusCode::NO_CONTENT, headers: Vec::new(), body: None }
    }

    pub fn error(status: StatusCode, code: &str, message: &str) -> Answer {
        Answer::json(status, graph_error_json(code, message))
    }

    pub fn not_found(key: &str) -> Answer {
        Answer::error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn bad_request(message: &str) -> Answer {
        Answer::error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn into_response(self) -> Response {
        let mut response = match &self.body {
            Some(body) => (self.status, body.to_string()).into_response(),
            None => self.status.into_response(),
        };
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) =
                (axum::http::HeaderName::try_from(name.as_str()), HeaderValue::from_str(value))
            {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// One Graph request of a customer tenant.
pub(crate) struct Call<'a> {
    pub tenant: String,
    pub method: Method,
    /// Decoded path segments below `/graph/v1.0`.
    pub segments: Vec<String>,
    /// Query parameters, names lower-cased (`$select`, `$top`, …).
    pub query: HashMap<String, String>,
    pub body: &'a [u8],
    /// Host for absolute links (`@odata.nextLink`).
    pub host: &'a str,
    /// `ConsistencyLevel: eventual` was sent (advanced queries need it).
    pub consistency_eventual: bool,
}

impl Call<'_> {
    /// The body as JSON, or the 400 Graph gives for an unreadable one.
    pub fn json_body(&self) -> Result<Value, Answer> {
        serde_json::from_slice(self.body).map_err(|e| {
            Answer::error(StatusCode::BAD_REQUEST, "BadRequest", &format!("Unable to read JSON request payload: {e}"))
        })
    }
}

pub(crate) fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| segment.to_string())
}

pub(crate) fn split_path(path: &str) -> Vec<String> {
    path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(decode).collect()
}

pub(crate) fn parse_query(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned())).collect()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// A Graph request, if its token is a customer tenant's; `None` leaves it to `notify`
/// (the MSP tenant's `sendMail`, and the 401 for an unknown token).
pub(crate) fn entry(
    shared: &Shared,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    host: &str,
    body: &Bytes,
) -> Option<Response> {
    let token = shared.m365.tokens.lookup(bearer(headers)?)?;
    // Counted as soon as the token names the tenant: a refused request reached Graph too.
    shared.m365.requests.outer(&token.tenant_id, split_path(path) == ["$batch"]);
    if token.resource != Resource::Graph {
        let message = "Invalid audience: the token was issued for https://outlook.office365.com.";
        return Some(Answer::error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).into_response());
    }
    let consented = shared.m365.state().tenants.get(&token.tenant_id).is_some_and(|t| t.consented);
    if !consented {
        let message = "The identity of the calling application could not be established.";
        return Some(
            Answer::error(StatusCode::UNAUTHORIZED, "Authorization_IdentityNotFound", message).into_response(),
        );
    }
    let call = Call {
        tenant: token.tenant_id,
        method: method.clone(),
        segments: split_path(path),
        query: parse_query(uri.query().unwrap_or("")),
        body,
        host,
        consistency_eventual: headers
            .get("consistencylevel")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.eq_ignore_ascii_case("eventual")),
    };
    if call.segments.len() == 1 && call.segments[0] == "$batch" {
        return Some(batch::run(shared, &call).into_response());
    }
    Some(dispatch(shared, &call).into_response())
}

/// The routes of the module table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    GetUser(String),
    PatchUser(String),
    GetManager(String),
    DeleteManager(String),
    PutManager(String),
    MemberOf(String),
    OwnedObjects(String),
    RevokeSessions(String),
    AssignLicense(String),
    GetMailboxSettings(String),
    PatchMailboxSettings(String),
    GetGroup(String),
    GroupOwners(String),
    GroupMembers(String),
    AddMember(String),
    RemoveMember { group: String, user: String },
    DeleteMemberObject { group: String, user: String },
    AddOwner(String),
    RemoveOwner { group: String, user: String },
    ManagedDevices,
    RetireDevice(String),
    SubscribedSkus,
    ListUsers,
}

impl Route {
    fn classify(method: &Method, segments: &[String]) -> Option<Route> {
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let id = |i: usize| segments[i].clone();
        let m = method.as_str();
        let route = match (m, lower.as_slice()) {
            ("GET", ["users"]) => Route::ListUsers,
            ("GET", ["users", _]) => Route::GetUser(id(1)),
            ("PATCH", ["users", _]) => Route::PatchUser(id(1)),
            ("GET", ["users", _, "manager"]) => Route::GetManager(id(1)),
            ("DELETE", ["users", _, "manager", "$ref"]) => Route::DeleteManager(id(1)),
            ("PUT", ["users", _, "manager", "$ref"]) => Route::PutManager(id(1)),
            ("GET", ["users", _, "memberof"] | ["users", _, "memberof", "microsoft.graph.group"]) => {
                Route::MemberOf(id(1))
            }
            ("GET", ["users", _, "ownedobjects"]) => Route::OwnedObjects(id(1)),
            ("POST", ["users", _, "revokesigninsessions"]) => Route::RevokeSessions(id(1)),
            ("POST", ["users", _, "assignlicense"]) => Route::AssignLicense(id(1)),
            ("GET", ["users", _, "mailboxsettings"]) => Route::GetMailboxSettings(id(1)),
            ("PATCH", ["users", _, "mailboxsettings"]) => Route::PatchMailboxSettings(id(1)),
            ("GET", ["groups", _]) => Route::GetGroup(id(1)),
            ("GET", ["groups", _, "owners"]) => Route::GroupOwners(id(1)),
            ("GET", ["groups", _, "members"]) => Route::GroupMembers(id(1)),
            ("POST", ["groups", _, "members", "$ref"]) => Route::AddMember(id(1)),
            ("DELETE", ["groups", _, "members", _, "$ref"]) => Route::RemoveMember { group: id(1), user: id(3) },
            ("DELETE", ["groups", _, "members", _]) => Route::DeleteMemberObject { group: id(1), user: id(3) },
            ("POST", ["groups", _, "owners", "$ref"]) => Route::AddOwner(id(1)),
            ("DELETE", ["groups", _, "owners", _, "$ref"]) => Route::RemoveOwner { group: id(1), user: id(3) },
            ("GET", ["devicemanagement", "manageddevices"]) => Route::ManagedDevices,
            ("POST", ["devicemanagement", "manageddevices", _, "retire"]) => Route::RetireDevice(id(2)),
            ("GET", ["subscribedskus"]) => Route::SubscribedSkus,
            _ => return None,
        };
        Some(route)
    }

    fn template(&self) -> &'static str {
        match self {
            Route::ListUsers => "/users",
            Route::GetUser(_) | Route::PatchUser(_) => "/users/{id}",
            Route::GetManager(_) => "/users/{id}/manager",
            Route::DeleteManager(_) | Route::PutManager(_) => "/users/{id}/manager/$ref",
            Route::MemberOf(_) => "/users/{id}/memberOf",
            Route::OwnedObjects(_) => "/users/{id}/ownedObjects",
            Route::RevokeSessions(_) => "/users/{id}/revokeSignInSessions",
            Route::AssignLicense(_) => "/users/{id}/assignLicense",
            Route::GetMailboxSettings(_) | Route::PatchMailboxSettings(_) => "/users/{id}/mailboxSettings",
            Route::GetGroup(_) => "/groups/{id}",
            Route::GroupOwners(_) => "/groups/{id}/owners",
            Route::GroupMembers(_) => "/groups/{id}/members",
            Route::AddMember(_) => "/groups/{id}/members/$ref",
            Route::RemoveMember { .. } => "/groups/{id}/members/{id}/$ref",
            Route::DeleteMemberObject { .. } => "/groups/{id}/members/{id}",
            Route::AddOwner(_) => "/groups/{id}/owners/$ref",
            Route::RemoveOwner { .. } => "/groups/{id}/owners/{id}/$ref",
            Route::ManagedDevices => "/deviceManagement/managedDevices",
            Route::RetireDevice(_) => "/deviceManagement/managedDevices/{id}/retire",
            Route::SubscribedSkus => "/subscribedSkus",
        }
    }

    /// Resource units (docs/vendors/microsoft-graph.md#directory-throttling).
    fn units(&self, selects: bool) -> u32 {
        let base = match self {
            Route::MemberOf(_) | Route::ListUsers => 2,
            Route::SubscribedSkus | Route::GroupMembers(_) => 3,
            _ => 1,
        };
        if selects { (base - 1).max(1) } else { base }
    }
}

fn is_write(method: &Method) -> bool {
    *method != Method::GET && *method != Method::HEAD
}

/// The answer when no route matches: 405 if another method would, else Graph's 400.
fn unrouted(call: &Call) -> Answer {
    let methods = [Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE];
    if methods.iter().any(|m| Route::classify(m, &call.segments).is_some()) {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        );
    }
    let segment = call.segments.last().cloned().unwrap_or_default();
    Answer::error(StatusCode::BAD_REQUEST, "BadRequest", &format!("Resource not found for the segment '{segment}'."))
}

/// Throttling, then the route.
pub(crate) fn dispatch(shared: &Shared, call: &Call) -> Answer {
    let Some(route) = Route::classify(&call.method, &call.segments) else { return unrouted(call) };
    shared.record_route(&call.method, &format!("/graph/v1.0{}", route.template()));
    let users = shared.m365.state().tenants.get(&call.tenant).map_or(0, |t| t.users.len());
    let units = route.units(call.query.contains_key("$select"));
    if let Err(refusal) = shared.m365.throttle.admit(&call.tenant, users, units, is_write(&call.method)) {
        shared.stats().throttled += 1;
        let mut answer = Answer::error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests. Retry after the number of seconds in Retry-After.",
        );
        let scope = format!("Tenant_Application/{}/{}/{}", refusal.scope, crate::GRAPH_CLIENT_ID, call.tenant);
        answer.headers.push(("Retry-After".into(), refusal.retry_after_secs.to_string()));
        answer.headers.push(("x-ms-throttle-scope".into(), scope));
        answer.headers.push(("x-ms-throttle-information".into(), format!("{}LimitExceeded", refusal.scope)));
        return answer;
    }
    let mut answer = route_call(shared, call, route);
    answer.headers.push(("x-ms-resource-unit".into(), units.to_string()));
    answer
}

fn route_call(shared: &Shared, call: &Call, route: Route) -> Answer {
    match route {
        Route::GetUser(u) => graph_users::get_user(shared, call, &u),
        Route::PatchUser(u) => graph_users::patch_user(shared, call, &u),
        Route::GetManager(u) => graph_users::get_manager(shared, call, &u),
        Route::DeleteManager(u) => graph_users::delete_manager(shared, call, &u),
        Route::PutManager(u) => graph_users::put_manager(shared, call, &u),
        Route::RevokeSessions(u) => graph_users::revoke_sessions(shared, call, &u),
        Route::AssignLicense(u) => graph_users::assign_license(shared, call, &u),
        Route::GetMailboxSettings(u) => graph_users::get_mailbox_settings(shared, call, &u),
        Route::PatchMailboxSettings(u) => graph_users::patch_mailbox_settings(shared, call, &u),
        Route::MemberOf(u) => graph_groups::member_of(shared, call, &u),
        Route::OwnedObjects(u) => graph_groups::owned_objects(shared, call, &u),
        Route::GetGroup(g) => graph_groups::get_group(shared, call, &g),
        Route::GroupOwners(g) => graph_groups::group_users(shared, call, &g, true),
        Route::GroupMembers(g) => graph_groups::group_users(shared, call, &g, false),
        Route::AddMember(g) => graph_groups::add_member(shared, call, &g),
        Route::RemoveMember { group, user } => graph_groups::remove_member(shared, call, &group, &user),
        Route::DeleteMemberObject { group, user } => graph_groups::delete_member_object(shared, call, &group, &user),
        Route::AddOwner(g) => graph_groups::add_owner(shared, call, &g),
        Route::RemoveOwner { group, user } => graph_groups::remove_owner(shared, call, &group, &user),
        Route::ManagedDevices => graph_groups::managed_devices(shared, call),
        Route::RetireDevice(d) => graph_groups::retire_device(shared, call, &d),
        Route::SubscribedSkus => graph_groups::subscribed_skus(shared, call),
        Route::ListUsers => graph_user_list::list_users(shared, call),
    }
}

impl Answer {
    /// A member reference to remove that is not there.
    pub fn not_found_members_removed() -> Answer {
        Answer::error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "One or more removed object references do not exist for the following modified properties: 'members'.",
        )
    }
}
