//! Microsoft Graph v1.0 for customer tenants: requests with the tenant's Graph token
//! (renewed once after a 401), pages followed through `@odata.nextLink` on the Graph host
//! only, and `$batch` (docs/vendors/microsoft-graph.md#batch).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{HttpClient, HttpRequest, HttpResponse, Retry};
use crate::ports::DirectoryError;

use super::errors::refusal;
use super::token::{Resource, TenantTokens};

/// Graph takes at most 20 requests in one `$batch`.
pub(crate) const BATCH_MAX: usize = 20;
/// The largest page Graph serves (`$top`).
pub(crate) const PAGE_SIZE: &str = "999";
/// Pages followed at most for one list: 999 rows each, far beyond any user's memberships;
/// a server that keeps answering links must not keep us here for ever.
const MAX_PAGES: usize = 1000;

/// One request of a `$batch`: a path relative to the version, with an optional body.
#[derive(Clone)]
pub(crate) struct BatchRequest {
    pub method: Method,
    pub url: String,
    pub body: Option<Value>,
}

/// Without the body: it may hold a password (a reset), which is never printed.
impl std::fmt::Debug for BatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// One answer of a `$batch`.
#[derive(Debug, Clone)]
pub(crate) struct BatchAnswer {
    pub status: u16,
    pub body: Value,
}

pub(crate) struct GraphClient {
    pub http: HttpClient,
    /// `{GRAPH_URL}/v1.0`
    base: url::Url,
    pub(super) tokens: Arc<TenantTokens>,
    /// `false`: [`Self::batch`] sends each request on its own, so a bench can count the
    /// requests a tenant would see without `$batch` ([`super::GraphDirectory::without_batches`]).
    pub(super) batches: bool,
}

impl GraphClient {
    pub fn new(http: HttpClient, base: url::Url, tokens: Arc<TenantTokens>) -> Self {
        Self { http, base, tokens, batches: true }
    }

    /// `{base}/{segments…}`, each segment percent-encoded (a UPN cannot change the path).
    pub fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// [`Self::url`] relative to the version, as `$batch` wants it.
    pub fn relative(&self, segments: &[&str]) -> String {
        self.relative_of(&self.url(segments))
    }

    /// `url` (one of [`Self::url`]'s) relative to the version, its query kept.
    pub fn relative_of(&self, url: &url::Url) -> String {
        let path = &url.path()[self.base.path().trim_end_matches('/').len()..];
        match url.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        }
    }

    /// Sends `request` with the tenant's Graph token (renewed once after a 401).
    pub async fn send(&self, tenant: &str, request: HttpRequest) -> Result<HttpResponse, DirectoryError> {
        self.tokens.send(&self.http, tenant, Resource::Graph, request).await
    }

    /// A request that must succeed: its JSON (Null for an empty body), or the refusal.
    pub async fn expect(&self, tenant: &str, what: &str, request: HttpRequest) -> Result<Value, DirectoryError> {
        let response = self.send(tenant, request.header("accept", "application/json")).await?;
        if !response.is_success() {
            return Err(refusal(&self.http, what, &response));
        }
        read_json(&response)
    }

    /// `GET`, `None` on 404.
    pub async fn get_optional(&self, tenant: &str, what: &str, url: url::Url) -> Result<Option<Value>, DirectoryError> {
        match self.expect(tenant, what, HttpRequest::new(Method::GET, url)).await {
            Err(DirectoryError::NotFound { .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// A write whose body is `body` (`None`: no body); repeating it sets the same state.
    pub async fn write(
        &self,
        tenant: &str,
        what: &str,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<Value, DirectoryError> {
        let mut request = HttpRequest::new(method, url).retry(Retry::Idempotent);
        if let Some(body) = body {
            request = request.json_body(body);
        }
        self.expect(tenant, what, request).await
    }

    /// Every row of a list, following `@odata.nextLink` as given, but only on the Graph host.
    pub async fn list(&self, tenant: &str, what: &str, mut url: url::Url) -> Result<Vec<Value>, DirectoryError> {
        if !url.query_pairs().any(|(k, _)| k == "$top") {
            url.query_pairs_mut().append_pair("$top", PAGE_SIZE);
        }
        let page = self.expect(tenant, what, HttpRequest::new(Method::GET, url)).await?;
        self.rest_of_list(tenant, what, &page).await
    }

    /// Every row of an advanced query (`$count`, `$filter` on a collection's count): Graph
    /// wants `ConsistencyLevel: eventual` on it and on every page after it
    /// (docs/vendors/microsoft-graph.md#licensed-users).
    pub async fn list_advanced(
        &self,
        tenant: &str,
        what: &str,
        mut url: url::Url,
    ) -> Result<Vec<Value>, DirectoryError> {
        if !url.query_pairs().any(|(k, _)| k == "$top") {
            url.query_pairs_mut().append_pair("$top", PAGE_SIZE);
        }
        let mut rows = Vec::new();
        for _ in 0..MAX_PAGES {
            let request = HttpRequest::new(Method::GET, url).header("consistencylevel", "eventual");
            let page = self.expect(tenant, what, request).await?;
            rows.extend(page["value"].as_array().cloned().unwrap_or_default());
            let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str) else { return Ok(rows) };
            url = self.next_link(what, next)?;
        }
        Err(DirectoryError::InvalidResponse { message: format!("{what}: more than {MAX_PAGES} pages") })
    }

    /// The rows of `first_page` (read alone or inside a `$batch`) and of every page after it.
    pub async fn rest_of_list(
        &self,
        tenant: &str,
        what: &str,
        first_page: &Value,
    ) -> Result<Vec<Value>, DirectoryError> {
        let mut rows = Vec::new();
        let mut page = first_page.clone();
        for _ in 0..MAX_PAGES {
            rows.extend(page["value"].as_array().cloned().unwrap_or_default());
            let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str) else { return Ok(rows) };
            let url = self.next_link(what, next)?;
            page = self.expect(tenant, what, HttpRequest::new(Method::GET, url)).await?;
        }
        Err(DirectoryError::InvalidResponse { message: format!("{what}: more than {MAX_PAGES} pages") })
    }

    /// A page link, refused unless it stays under the Graph base: it is followed with the token.
    fn next_link(&self, what: &str, next: &str) -> Result<url::Url, DirectoryError> {
        let url = url::Url::parse(next)
            .map_err(|e| DirectoryError::InvalidResponse { message: format!("{what}: bad @odata.nextLink: {e}") })?;
        if !crate::http::origin::same_origin(&self.base, &url) || !url.path().starts_with(self.base.path()) {
            let host = crate::http::origin::host_of(&url);
            return Err(DirectoryError::InvalidResponse {
                message: format!("{what}: @odata.nextLink leads off the Graph host (to {host}); not followed"),
            });
        }
        Ok(url)
    }

    /// Sends `requests` in `$batch`es of at most [`BATCH_MAX`]; answers in the order of
    /// `requests`, whatever order Graph answers in (correlated by id). An inner 429 is sent
    /// again after its `Retry-After`, within the HTTP layer's retry count and longest wait.
    pub async fn batch(&self, tenant: &str, requests: &[BatchRequest]) -> Result<Vec<BatchAnswer>, DirectoryError> {
        if !self.batches {
            return self.one_by_one(tenant, requests).await;
        }
        let mut answers: Vec<Option<BatchAnswer>> = vec![None; requests.len()];
        for (chunk_start, chunk) in requests.chunks(BATCH_MAX).enumerate().map(|(i, c)| (i * BATCH_MAX, c)) {
            let mut pending: Vec<usize> = (chunk_start..chunk_start + chunk.len()).collect();
            let mut retries = 0;
            while !pending.is_empty() {
                let (done, wait) = self.batch_once(tenant, requests, &pending).await?;
                for (index, answer) in done {
                    answers[index] = Some(answer);
                }
                pending.retain(|i| answers[*i].as_ref().is_none_or(|a| a.status == 429));
                if pending.is_empty() || retries >= self.http.settings().max_retries {
                    break;
                }
                retries += 1;
                tracing::info!(
                    throttled = pending.len(),
                    wait_ms = wait.as_millis() as u64,
                    "Graph $batch: inner 429, retrying"
                );
                tokio::time::sleep(wait).await;
            }
        }
        answers
            .into_iter()
            .map(|a| {
                a.ok_or_else(|| DirectoryError::InvalidResponse { message: "$batch: a request got no answer".into() })
            })
            .collect()
    }

    /// `requests` sent as ordinary requests, one after the other (batching turned off); the
    /// HTTP layer retries a 429 as for any single call.
    async fn one_by_one(&self, tenant: &str, requests: &[BatchRequest]) -> Result<Vec<BatchAnswer>, DirectoryError> {
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            let url = self.base.join(&format!(
                "{}/{}",
                self.base.path().trim_end_matches('/'),
                request.url.trim_start_matches('/')
            ));
            let url = url.map_err(|e| DirectoryError::InvalidResponse { message: format!("{}: {e}", request.url) })?;
            let mut single = HttpRequest::new(request.method.clone(), url).header("accept", "application/json");
            if let Some(body) = &request.body {
                single = single.json_body(body);
            }
            let response = self.send(tenant, single).await?;
            answers.push(BatchAnswer { status: response.status, body: read_json(&response).unwrap_or(Value::Null) });
        }
        Ok(answers)
    }

    /// One `$batch` of `pending` (indexes into `requests`, ids are the indexes): the answers
    /// by index, and how long to wait before sending the throttled ones again.
    async fn batch_once(
        &self,
        tenant: &str,
        requests: &[BatchRequest],
        pending: &[usize],
    ) -> Result<(Vec<(usize, BatchAnswer)>, Duration), DirectoryError> {
        let inner: Vec<Value> = pending.iter().map(|&i| batch_entry(i, &requests[i])).collect();
        let request = HttpRequest::new(Method::POST, self.url(&["$batch"])).json_body(&json!({ "requests": inner }));
        let body = self.expect(tenant, "$batch", request).await?;
        let mut by_id: HashMap<String, &Value> = HashMap::new();
        for response in body["responses"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(id) = response.get("id").and_then(Value::as_str) {
                by_id.insert(id.to_string(), response);
            }
        }
        let mut wait = Duration::ZERO;
        let mut done = Vec::new();
        for &index in pending {
            let Some(response) = by_id.get(&index.to_string()) else { continue };
            let status = response.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
            if status == 429 {
                wait = wait.max(self.inner_retry_after(response));
            }
            done.push((index, BatchAnswer { status, body: response.get("body").cloned().unwrap_or(Value::Null) }));
        }
        Ok((done, wait))
    }

    /// An inner 429's `Retry-After` (UNCONFIRMED that Graph sends one inside a batch:
    /// without it, back off as the HTTP layer would), capped as the HTTP layer caps it.
    fn inner_retry_after(&self, response: &Value) -> Duration {
        let settings = self.http.settings();
        let headers = response.get("headers").and_then(Value::as_object);
        let value = headers.and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))).map(|(_, v)| v);
        let text = value.map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        text.and_then(|t| crate::http::limits::retry_after_wait(&t, settings.max_retry_after, chrono::Utc::now()))
            .unwrap_or(settings.base_backoff.max(Duration::from_secs(1)).min(settings.max_retry_after))
    }

    /// A batch answer that is not a 2xx, as the error a single request would have given.
    pub fn batch_refusal(&self, what: &str, answer: &BatchAnswer) -> DirectoryError {
        let (code, message) = super::errors::code_and_message(&answer.body);
        let message = self.http.redactor().scrub(&format!("{what}: {message}"));
        let code = self.http.redactor().scrub(&code);
        if answer.status == 424 {
            return DirectoryError::Refused { status: 424, code: "FailedDependency".into(), message };
        }
        super::errors::classify(answer.status, code, message)
    }
}

fn batch_entry(index: usize, request: &BatchRequest) -> Value {
    let mut entry = json!({ "id": index.to_string(), "method": request.method.as_str(), "url": request.url });
    if let Some(body) = &request.body {
        entry["body"] = body.clone();
        entry["headers"] = json!({ "Content-Type": "application/json" });
    }
    entry
}

pub(crate) fn read_json(response: &HttpResponse) -> Result<Value, DirectoryError> {
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    response.json().map_err(|e| DirectoryError::InvalidResponse { message: format!("not JSON: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpSettings, Redactor};

    fn client() -> GraphClient {
        let http = HttpClient::new("graph-test", HttpSettings::default(), Redactor::default()).unwrap();
        let base = url::Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        let tokens = TenantTokens::new(base.clone(), "app".into(), "s3cret".into());
        GraphClient::new(http, base, Arc::new(tokens))
    }

    #[test]
    fn next_links_must_stay_on_the_graph_host() {
        let graph = client();
        let ok = graph.next_link("list", "https://graph.microsoft.com/v1.0/users/x/memberOf?$skiptoken=a");
        assert!(ok.is_ok());
        for off in [
            "https://evil.example/v1.0/users/x/memberOf",
            "http://graph.microsoft.com/v1.0/users",
            "https://graph.microsoft.com:8443/v1.0/users",
            "https://graph.microsoft.com/beta/users",
        ] {
            let error = graph.next_link("list", off).unwrap_err();
            assert!(matches!(error, DirectoryError::InvalidResponse { .. }), "{off}: {error}");
        }
    }

    #[test]
    fn batch_paths_are_relative_to_the_version_and_encoded() {
        let graph = client();
        assert_eq!(graph.relative(&["groups", "g1", "members", "a/b", "$ref"]), "/groups/g1/members/a%2Fb/$ref");
    }

    #[test]
    fn batch_urls_keep_their_query_and_requests_never_print_their_body() {
        let graph = client();
        let mut url = graph.url(&["users", "u1", "memberOf"]);
        url.query_pairs_mut().append_pair("$select", "id,displayName").append_pair("$top", PAGE_SIZE);
        assert_eq!(graph.relative_of(&url), "/users/u1/memberOf?%24select=id%2CdisplayName&%24top=999");
        let body = json!({ "passwordProfile": { "password": "Never-Printed!42" } });
        let request = BatchRequest { method: Method::PATCH, url: "/users/u1".into(), body: Some(body) };
        let printed = format!("{request:?}");
        assert!(!printed.contains("Never-Printed") && printed.contains("/users/u1"), "{printed}");
    }
}
