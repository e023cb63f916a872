//! IT Glue API adapter (the [`DocPlatform`] port).
//!
//! Facts from the vendor fact sheet (`psa-itglue-api.md` §4):
//! - Base URL by region: `https://api.itglue.com`, `https://api.eu.itglue.com`,
//!   `https://api.au.itglue.com`; `x-api-key` on every request; JSON:API documents,
//!   `application/vnd.api+json` (required when there is a body).
//! - Resource objects carry a **string** `id` and kebab-case attributes.
//! - Lists page with `page[number]` (1-based) and `page[size]` (at most 1000) and answer
//!   `meta.total-pages` / `meta.total-count`; counting with `page[size]=1` and
//!   `meta.total-count` avoids paging everything.
//! - Flexible assets can only be listed per type (`filter[flexible_asset_type_id]` is
//!   required), so they are counted once per type from `/flexible_asset_types`.
//! - Organizations are deleted with the bulk `DELETE /organizations` and a JSON:API body
//!   (a body on a DELETE); the deletion is asynchronous: the organization may still be
//!   readable for a while.
//! - 3,000 requests per 5 minutes; 429 when over. A wrong key is 403 (401 is listed too).
//!
//! UNCONFIRMED points, and how this client copes:
//! - `filter[name]` semantics on organizations (exact? substring? case-sensitive?): the
//!   client never trusts it. Name lookups list every organization and compare here,
//!   ignoring case: trusting a case-sensitive filter would miss `LITWARE INC` beside
//!   `Litware Inc` and turn an ambiguous name into the wrong deletion. It costs one request
//!   per 1,000 organizations.
//! - Whether archived configurations (and passwords) are listed without a filter: each is
//!   counted twice, `filter[archived]=false` and `=true`.
//! - The documents route (`/organizations/{id}/relationships/documents`) is not in the
//!   official documentation: when it cannot be read, documents are reported as "not
//!   counted", which the workflow treats as possible dependents (it blocks an unforced
//!   deletion) rather than as zero.
//! - `meta.total-count` beyond the documented lists: when it is missing the client pages
//!   through and counts the records.
//! - Snake-case vs kebab-case filter keys: snake-case, as IT Glue's own PowerShell wrapper
//!   sends them. A filter the server ignored would over-count (account-wide), which blocks
//!   a deletion; it can never make an organization look empty.
//! - `psa-id` / `psa-integration-type` on organizations (the fact sheet knows them only as
//!   filters): read when present, as a string or a number.
//! - Exports (`POST /exports`, `GET /exports/{id}`) are outside the fact sheet; shapes
//!   follow IT Glue's developer documentation as relayed by public wrappers: attributes
//!   `organization-id`, `include-logs`; the record shows `status` (`done` when finished)
//!   and `download-url`. Without an `organization-id` IT Glue exports the whole account,
//!   so an answer naming another organization (or none) is refused. One public wrapper
//!   says exports need a user access token rather than an API key: a refused export stops
//!   the deletion (unless forced without export), it is never skipped silently.
//! - Whether the deletion is finished shows only as the organization no longer being
//!   readable (404); that is what the workflow polls for.
//! - `Retry-After` on 429: honoured when present, otherwise the HTTP layer backs off
//!   exponentially; a rolling five-minute budget keeps the client under the documented
//!   3,000 requests in the first place.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use crate::domain::{DependencyCounts, Export, Organization};
use crate::error::DocError;
use crate::http::{BudgetSettings, HttpClient, HttpError, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::DocPlatform;
use crate::secret::SecretString;

/// The most records IT Glue returns per page.
const PAGE_SIZE: u32 = 1000;
/// A guard against a server that keeps announcing pages: 10 million records.
const MAX_PAGES: u64 = 10_000;
const JSON_API: &str = "application/vnd.api+json";
/// IT Glue's documented limit: 3,000 requests in any five minutes.
pub const DEFAULT_RATE_LIMIT: u32 = 3000;
pub const RATE_WINDOW: Duration = Duration::from_secs(300);

/// The IT Glue data centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItGlueRegion {
    Us,
    Eu,
    Au,
}

impl ItGlueRegion {
    pub fn base_url(self) -> &'static str {
        match self {
            ItGlueRegion::Us => "https://api.itglue.com",
            ItGlueRegion::Eu => "https://api.eu.itglue.com",
            ItGlueRegion::Au => "https://api.au.itglue.com",
        }
    }

    /// `us`, `eu` or `au` (any case); an empty value is the US.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "us" | "" => Some(ItGlueRegion::Us),
            "eu" => Some(ItGlueRegion::Eu),
            "au" => Some(ItGlueRegion::Au),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ItGlueSettings {
    /// The API base, e.g. `https://api.eu.itglue.com` (paths are appended to it).
    pub url: String,
    pub api_key: SecretString,
}

/// The HTTP tuning IT Glue needs: a rolling five-minute budget under the documented 3,000
/// requests, waiting for room rather than failing (a deletion run is short; a cleanup of
/// many organizations may wait), and a handful of requests in flight.
pub fn default_http_settings() -> HttpSettings {
    http_settings(HttpSettings::default(), DEFAULT_RATE_LIMIT, Duration::from_secs(300))
}

/// [`default_http_settings`] on top of `base` (timeouts, retries), with `rate_limit`
/// requests per five minutes (0 = no client-side budget) and at most `max_wait` of waiting
/// for room.
pub fn http_settings(base: HttpSettings, rate_limit: u32, max_wait: Duration) -> HttpSettings {
    HttpSettings {
        max_concurrency: 4,
        budget: (rate_limit > 0).then_some(BudgetSettings { limit: rate_limit, window: RATE_WINDOW, max_wait }),
        ..base
    }
}

pub struct ItGlueClient {
    http: HttpClient,
    base: url::Url,
    api_key: SecretString,
    page_size: u32,
}

fn config_error(message: impl Into<String>) -> DocError {
    DocError::Configuration { message: message.into() }
}

fn invalid(message: impl Into<String>) -> DocError {
    DocError::InvalidResponse { message: message.into() }
}

fn from_http(error: HttpError) -> DocError {
    match error {
        HttpError::Build { .. } => DocError::Configuration { message: error.to_string() },
        HttpError::Connection { .. } | HttpError::BudgetExhausted { .. } => {
            DocError::Connection { message: error.to_string() }
        }
    }
}

/// An IT Glue id: a positive integer. Anything else is refused before a URL is built.
fn positive_id(id: &str, what: &str) -> Result<u64, DocError> {
    id.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| DocError::InvalidId {
        message: format!("'{id}' is not an IT Glue {what} id (a positive integer)"),
    })
}

/// A JSON value that should hold an id or a short text: strings as they are, numbers as text.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The message of a JSON:API error document (`{"errors":[{"status","title","detail"}]}`),
/// else the start of the body.
fn error_message(response: &HttpResponse) -> String {
    if let Ok(body) = response.json()
        && let Some(errors) = body.get("errors").and_then(Value::as_array)
    {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let title = e.get("title").and_then(Value::as_str).unwrap_or("");
                let detail = e.get("detail").and_then(Value::as_str).unwrap_or("");
                match (title.is_empty(), detail.is_empty()) {
                    (false, false) => format!("{title}: {detail}"),
                    (false, true) => title.to_string(),
                    (true, false) => detail.to_string(),
                    (true, true) => e.to_string(),
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    response.body_excerpt()
}

impl ItGlueClient {
    pub fn new(settings: ItGlueSettings, http: HttpSettings) -> Result<Self, DocError> {
        if settings.api_key.expose().trim().is_empty() {
            return Err(config_error("ITGLUE_API_KEY is not set"));
        }
        let base = super::psa_common::with_trailing_slash(
            url::Url::parse(settings.url.trim())
                .map_err(|e| config_error(format!("ITGLUE_URL is not a valid URL: {e}")))?,
        );
        let redactor = Redactor::new([settings.api_key.expose().to_string()]);
        let http = HttpClient::new("itglue", http, redactor).map_err(from_http)?;
        Ok(Self { http, base, api_key: settings.api_key, page_size: PAGE_SIZE })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Ask for `page_size` records per page (1..=1000) instead of 1000: for tests of paging.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, PAGE_SIZE);
        self
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, DocError> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| config_error(format!("cannot build an IT Glue URL for {path}: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<HttpResponse, DocError> {
        let mut request = HttpRequest::new(method, url)
            .sensitive_header("x-api-key", self.api_key.expose())
            .header("accept", JSON_API)
            .retry(retry);
        if let Some(body) = body {
            // IT Glue wants its own media type on every body (415 otherwise).
            request = request.json_body(body).header("content-type", JSON_API);
        }
        self.http.send(request).await.map_err(from_http)
    }

    fn error_for(&self, response: &HttpResponse, what: &str) -> DocError {
        let message = self.http.redactor().scrub(&error_message(response));
        let status = response.status;
        let text = format!("IT Glue answered HTTP {status} to {what}: {message}");
        match status {
            401 | 403 => DocError::PermissionDenied { message: text },
            404 => DocError::NotFound { what: what.to_string() },
            429 | 500..=599 => DocError::Connection { message: text },
            _ => DocError::Rejected { status, message: text },
        }
    }

    /// A GET answered with a JSON document; `None` on 404.
    async fn get_json(&self, path: &str, query: &[(&str, String)], what: &str) -> Result<Option<Value>, DocError> {
        let response = self.send(Method::GET, self.url(path, query)?, None, Retry::Idempotent).await?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(self.error_for(&response, what));
        }
        response.json().map(Some).map_err(|e| invalid(format!("{what}: body is not JSON: {e}")))
    }

    /// A GET that must find something: 404 is an error.
    async fn get_found(&self, path: &str, query: &[(&str, String)], what: &str) -> Result<Value, DocError> {
        self.get_json(path, query, what).await?.ok_or_else(|| DocError::NotFound { what: what.to_string() })
    }

    /// Every record of a list, each turned into a `T` as its page arrives.
    async fn list_all<T>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        what: &str,
        mut each: impl FnMut(&Value) -> Result<T, DocError> + Send,
    ) -> Result<Vec<T>, DocError> {
        let mut records = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut query = filters.to_vec();
            query.push(("page[size]", self.page_size.to_string()));
            query.push(("page[number]", page.to_string()));
            let body = self.get_found(path, &query, what).await?;
            let data = body
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(format!("{what}: response has no 'data' array")))?;
            for record in data {
                records.push(each(record)?);
            }
            if last_page(&body, page, data.len(), self.page_size) {
                return Ok(records);
            }
        }
        Err(invalid(format!("{what}: more than {MAX_PAGES} pages")))
    }

    /// How many records a list holds: `meta.total-count` of a one-record page, or (when the
    /// server does not say) the records counted page by page.
    async fn count(&self, path: &str, filters: &[(&str, String)], what: &str) -> Result<u64, DocError> {
        let mut query = filters.to_vec();
        query.push(("page[size]", "1".to_string()));
        query.push(("page[number]", "1".to_string()));
        let body = self.get_found(path, &query, what).await?;
        if let Some(total) = body.pointer("/meta/total-count").and_then(Value::as_u64) {
            return Ok(total);
        }
        tracing::debug!(what, "no meta.total-count: counting page by page");
        Ok(self.list_all(path, filters, what, |_| Ok(())).await?.len() as u64)
    }

    fn parse_organization(record: &Value) -> Result<Organization, DocError> {
        let id = text_of(record.get("id")).ok_or_else(|| invalid("an organization without an id"))?;
        let attributes = record.get("attributes").cloned().unwrap_or(Value::Null);
        let attr = |key: &str| text_of(attributes.get(key));
        let name = attributes
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("organization {id} has no name")))?;
        Ok(Organization {
            id,
            name,
            short_name: attr("short-name"),
            status: attr("organization-status-name"),
            org_type: attr("organization-type-name"),
            psa_id: attr("psa-id"),
            psa_integration: attr("psa-integration-type"),
        })
    }

    fn parse_export(record: &Value) -> Result<Export, DocError> {
        let id = text_of(record.get("id")).ok_or_else(|| invalid("an export without an id"))?;
        let attributes = record.get("attributes").cloned().unwrap_or(Value::Null);
        Ok(Export {
            id,
            organization_id: text_of(attributes.get("organization-id")).unwrap_or_default(),
            status: text_of(attributes.get("status")).unwrap_or_else(|| "unknown".into()),
            download_url: text_of(attributes.get("download-url")),
        })
    }

    /// The flexible asset types of the account: `(id, name)`.
    async fn flexible_asset_types(&self) -> Result<Vec<(String, String)>, DocError> {
        self.list_all("flexible_asset_types", &[], "flexible asset types", |record| {
            let id = text_of(record.get("id")).ok_or_else(|| invalid("a flexible asset type without an id"))?;
            let name = record.pointer("/attributes/name").and_then(Value::as_str).unwrap_or("").to_string();
            Ok((id, name))
        })
        .await
    }
}

/// Whether `body` is the last page: by `meta.total-pages`, else by `meta.next-page` or
/// `links.next`, else by a short page.
fn last_page(body: &Value, page: u64, records: usize, page_size: u32) -> bool {
    if records == 0 {
        return true;
    }
    if let Some(total_pages) = body.pointer("/meta/total-pages").and_then(Value::as_u64) {
        return page >= total_pages;
    }
    if let Some(next) = body.pointer("/meta/next-page") {
        return next.is_null();
    }
    if let Some(links) = body.get("links").and_then(Value::as_object) {
        return links.get("next").is_none_or(Value::is_null);
    }
    records < page_size as usize
}

/// One kind of dependent counted, or why it could not be.
enum Counted {
    Count(u64),
    Unknown(String),
}

impl ItGlueClient {
    /// Count one kind; an answer that says "you cannot count this" (not found, refused,
    /// forbidden) is a kind not counted, and a failure to reach IT Glue stops everything.
    async fn count_kind(&self, path: &str, filters: &[(&str, String)], what: &str) -> Result<Counted, DocError> {
        match self.count(path, filters, what).await {
            Ok(n) => Ok(Counted::Count(n)),
            Err(e @ (DocError::NotFound { .. } | DocError::Rejected { .. } | DocError::PermissionDenied { .. })) => {
                Ok(Counted::Unknown(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// A kind counted as `archived=false` plus `archived=true`.
    async fn count_with_archived(&self, path: &str, org: &str, what: &str) -> Result<Counted, DocError> {
        let mut total = 0;
        for archived in ["false", "true"] {
            let filters = [("filter[organization_id]", org.to_string()), ("filter[archived]", archived.to_string())];
            match self.count_kind(path, &filters, what).await? {
                Counted::Count(n) => total += n,
                unknown => return Ok(unknown),
            }
        }
        Ok(Counted::Count(total))
    }
}

#[async_trait]
impl DocPlatform for ItGlueClient {
    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, DocError> {
        let id = positive_id(id, "organization")?;
        let Some(body) = self.get_json(&format!("organizations/{id}"), &[], "organization").await? else {
            return Ok(None);
        };
        let data = body.get("data").ok_or_else(|| invalid("organization: response has no 'data'"))?;
        Self::parse_organization(data).map(Some)
    }

    async fn organizations(&self) -> Result<Vec<Organization>, DocError> {
        self.list_all("organizations", &[("sort", "id".to_string())], "organizations", Self::parse_organization).await
    }

    async fn organizations_by_name(&self, name: &str) -> Result<Vec<Organization>, DocError> {
        // Compared here, never through filter[name]: see the module comment.
        let wanted = name.trim().to_lowercase();
        Ok(self.organizations().await?.into_iter().filter(|o| o.name.trim().to_lowercase() == wanted).collect())
    }

    async fn dependencies(&self, organization_id: &str) -> Result<DependencyCounts, DocError> {
        let org = positive_id(organization_id, "organization")?.to_string();
        let by_org = [("filter[organization_id]", org.clone())];
        let mut counts = DependencyCounts::default();
        let mut unknown = BTreeMap::new();
        let mut record = |kind: &str, counted: Counted, slot: &mut u64| match counted {
            Counted::Count(n) => *slot = n,
            Counted::Unknown(why) => {
                unknown.insert(kind.to_string(), why);
            }
        };
        record(
            "configurations",
            self.count_with_archived("configurations", &org, "configurations").await?,
            &mut counts.configurations,
        );
        record("passwords", self.count_with_archived("passwords", &org, "passwords").await?, &mut counts.passwords);
        record("contacts", self.count_kind("contacts", &by_org, "contacts").await?, &mut counts.contacts);
        record("locations", self.count_kind("locations", &by_org, "locations").await?, &mut counts.locations);
        // Nested relationship routes take no filters; this one is UNCONFIRMED (module comment).
        record(
            "documents",
            self.count_kind(&format!("organizations/{org}/relationships/documents"), &[], "documents").await?,
            &mut counts.documents,
        );
        match self.flexible_asset_types().await {
            Ok(types) => {
                for (type_id, type_name) in types {
                    let filters =
                        [("filter[flexible_asset_type_id]", type_id.clone()), ("filter[organization_id]", org.clone())];
                    let label = if type_name.is_empty() { format!("type {type_id}") } else { type_name };
                    match self.count_kind("flexible_assets", &filters, "flexible assets").await? {
                        Counted::Count(0) => {}
                        Counted::Count(n) => {
                            // Two types may share a name: keep both counts apart.
                            let key = if counts.flexible_assets.contains_key(&label) {
                                format!("{label} (type {type_id})")
                            } else {
                                label
                            };
                            counts.flexible_assets.insert(key, n);
                        }
                        Counted::Unknown(why) => {
                            unknown.insert(format!("flexible assets: {label}"), why);
                        }
                    }
                }
            }
            Err(e @ (DocError::NotFound { .. } | DocError::Rejected { .. } | DocError::PermissionDenied { .. })) => {
                unknown.insert("flexible assets".into(), e.to_string());
            }
            Err(e) => return Err(e),
        }
        counts.unknown = unknown;
        Ok(counts)
    }

    async fn request_export(&self, organization_id: &str) -> Result<Export, DocError> {
        let org = positive_id(organization_id, "organization")?;
        let body = json!({
            "data": {
                "type": "exports",
                // Logs go with it: after the deletion the export is the only record left.
                "attributes": { "organization-id": org, "include-logs": true }
            }
        });
        // A POST creates an export: it is repeated only after a 429 ("not processed").
        let response =
            self.send(Method::POST, self.url("exports", &[])?, Some(&body), Retry::OnlyWhenThrottled).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, "export request"));
        }
        let body = response.json().map_err(|e| invalid(format!("export: body is not JSON: {e}")))?;
        let export = Self::parse_export(body.get("data").ok_or_else(|| invalid("export: response has no 'data'"))?)?;
        if export.organization_id != org.to_string() {
            return Err(invalid(format!(
                "IT Glue created export {} for organization '{}', not for {org}; it is not used",
                export.id, export.organization_id
            )));
        }
        Ok(export)
    }

    async fn export(&self, export_id: &str) -> Result<Export, DocError> {
        let id = positive_id(export_id, "export")?;
        let body = self.get_found(&format!("exports/{id}"), &[], "export").await?;
        Self::parse_export(body.get("data").ok_or_else(|| invalid("export: response has no 'data'"))?)
    }

    async fn delete_organization(&self, organization_id: &str) -> Result<(), DocError> {
        let org = positive_id(organization_id, "organization")?;
        let body = json!({ "data": [ { "type": "organizations", "attributes": { "id": org } } ] });
        // Marking an organization for deletion twice is harmless, so a broken connection
        // may be retried; a 404 on the retry means the first attempt went through and the
        // organization is already gone (the workflow checks).
        let response =
            self.send(Method::DELETE, self.url("organizations", &[])?, Some(&body), Retry::Idempotent).await?;
        if !response.is_success() {
            return Err(self.error_for(&response, "organization deletion"));
        }
        // 200 lists the organizations that will be deleted; ours should be among them.
        if let Ok(answer) = response.json()
            && let Some(listed) = answer.get("data").and_then(Value::as_array)
            && !listed.iter().any(|o| text_of(o.get("id")).as_deref() == Some(org.to_string().as_str()))
        {
            tracing::warn!(org_id = org, "IT Glue accepted the deletion but did not list the organization");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_ids() {
        assert_eq!(ItGlueRegion::parse("EU").map(ItGlueRegion::base_url), Some("https://api.eu.itglue.com"));
        assert_eq!(ItGlueRegion::parse(""), Some(ItGlueRegion::Us));
        assert_eq!(ItGlueRegion::parse("uk"), None);
        assert!(positive_id("12", "organization").is_ok());
        for bad in ["0", "-1", "12 or 1=1", "../x", ""] {
            assert!(matches!(positive_id(bad, "organization"), Err(DocError::InvalidId { .. })), "{bad}");
        }
    }

    #[test]
    fn pages_end_by_total_pages_next_links_or_a_short_page() {
        assert!(!last_page(&json!({"meta": {"total-pages": 2}}), 1, 1000, 1000));
        assert!(last_page(&json!({"meta": {"total-pages": 2}}), 2, 5, 1000));
        assert!(last_page(&json!({"meta": {"next-page": null}}), 1, 1000, 1000));
        assert!(!last_page(&json!({"links": {"next": "https://x/?page[number]=2"}}), 1, 1000, 1000));
        assert!(last_page(&json!({}), 3, 10, 1000));
        assert!(!last_page(&json!({}), 3, 1000, 1000));
        assert!(last_page(&json!({"meta": {"total-pages": 9}}), 1, 0, 1000), "an empty page ends the list");
    }

    #[test]
    fn organizations_and_exports_parse_with_string_or_number_ids() {
        let org = ItGlueClient::parse_organization(&json!({
            "id": "9001", "type": "organizations",
            "attributes": {"name": "Contoso Dental", "psa-id": 250, "psa-integration-type": "manage",
                            "organization-status-name": "Active"}
        }))
        .unwrap();
        assert_eq!((org.id.as_str(), org.psa_id.as_deref()), ("9001", Some("250")));
        assert!(ItGlueClient::parse_organization(&json!({"id": 1, "attributes": {}})).is_err());
        let export = ItGlueClient::parse_export(&json!({
            "id": "77", "attributes": {"organization-id": 9001, "status": "done", "download-url": "https://x/e.zip"}
        }))
        .unwrap();
        assert!(export.is_done() && export.organization_id == "9001");
    }

    #[test]
    fn json_api_errors_are_read() {
        let response = HttpResponse {
            status: 422,
            headers: Default::default(),
            body: br#"{"errors":[{"status":"422","title":"Unprocessable Entity","detail":"must exist"}]}"#.to_vec(),
        };
        assert_eq!(error_message(&response), "Unprocessable Entity: must exist");
    }
}
