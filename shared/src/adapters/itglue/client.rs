//! The IT Glue connection: the API key, JSON:API documents, numbered pages and counts.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;

use super::ItGlueSettings;
use crate::adapters::vendor_http::{
    CredentialValues, ErrorBody, Fields, NextPage, PageSeen, Pager, RotatingHeaders, Rows, StaticHeaders, VendorHttp,
    id_text, positive_id,
};
use crate::domain::{Export, Organization};
use crate::error::DocError;
use crate::http::{HttpClient, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// The most records IT Glue returns per page.
const PAGE_SIZE: u32 = 1000;
const JSON_API: &str = "application/vnd.api+json";

pub struct ItGlueClient {
    pub(super) api: VendorHttp<DocError>,
    /// For export download links on another host: sends no credential at all.
    pub(super) downloads: HttpClient,
    page_size: u32,
    /// The API key as configured at start.
    at_start: CredentialValues,
}

const API_KEY: &str = "ITGLUE_API_KEY";
/// The shortest whole-request time allowed to read an export.
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn credential_headers(values: &CredentialValues) -> StaticHeaders {
    let key = values.get(API_KEY).cloned().unwrap_or_else(|| SecretString::new(String::new()));
    StaticHeaders::default().secret("x-api-key", key)
}

pub(super) fn invalid(message: impl Into<String>) -> DocError {
    DocError::InvalidResponse { message: message.into() }
}

/// An IT Glue id: a positive integer. Anything else is refused before a URL is built.
pub(super) fn numeric_id(id: &str, what: &str) -> Result<i64, DocError> {
    positive_id(id, "IT Glue", what)
}

impl ItGlueClient {
    pub fn new(settings: ItGlueSettings, http: HttpSettings) -> Result<Self, DocError> {
        let config_error = |message: String| DocError::Configuration { message };
        if settings.api_key.expose().trim().is_empty() {
            return Err(config_error("ITGLUE_API_KEY is not set".into()));
        }
        let base = crate::http::origin::secure_url("ITGLUE_URL", &settings.url).map_err(config_error)?;
        let redactor = Redactor::new([settings.api_key.expose().to_string()]);
        // An export can be far larger than an API answer and takes longer to read; the
        // download's own cap is set per request (`download_export`). No budget: the link
        // is not the API.
        let download_settings = HttpSettings {
            request_timeout: http.request_timeout.max(DOWNLOAD_TIMEOUT),
            budget: None,
            rate_limit_per_sec: None,
            ..http.clone()
        };
        let downloads = HttpClient::new("itglue-export", download_settings, redactor.clone())
            .map_err(|e| DocError::Configuration { message: e.to_string() })?;
        let http = HttpClient::new("itglue", http, redactor)
            .map_err(|e| DocError::Configuration { message: e.to_string() })?;
        let at_start: CredentialValues = HashMap::from([(API_KEY, settings.api_key)]);
        let api = VendorHttp::new(http, "IT Glue", base, credential_headers(&at_start), read_error).accept(JSON_API);
        Ok(Self { api, downloads, page_size: PAGE_SIZE, at_start })
    }

    /// Read the API key through `store` on every request (its cache decides how often it
    /// is asked), and once more after a refusal: a rotated key is picked up without a
    /// restart (vendor_http::RotatingHeaders).
    pub fn with_secret_store(mut self, store: Arc<dyn SecretStore>) -> Self {
        let rotating = RotatingHeaders::new(store, self.at_start.clone(), Box::new(credential_headers));
        self.api = self.api.with_credentials(rotating);
        self
    }

    pub fn http(&self) -> &HttpClient {
        self.api.http()
    }

    /// Ask for `page_size` records per page (1..=1000) instead of 1000: for tests of paging.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, PAGE_SIZE);
        self
    }

    /// A request with a JSON:API body: IT Glue wants its own media type on every body (415 otherwise).
    pub(super) fn with_body(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        retry: Retry,
    ) -> Result<HttpRequest, DocError> {
        Ok(self.api.request(method, path, &[])?.json_body(body).header("content-type", JSON_API).retry(retry))
    }

    /// A GET that must find something: 404 is an error.
    pub(super) async fn get_found(&self, path: &str, query: &[(&str, String)], what: &str) -> Result<Value, DocError> {
        self.api.get(path, query, what).await?.ok_or_else(|| DocError::NotFound { what: what.to_string() })
    }

    /// Every record of a list, each turned into a `T` as its page arrives.
    pub(super) async fn list<T>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        what: &str,
        each: impl FnMut(&Value) -> Result<T, DocError> + Send,
    ) -> Result<Vec<T>, DocError> {
        let mut query = filters.to_vec();
        query.push(("page[size]", self.page_size.to_string()));
        query.push(("page[number]", "1".to_string()));
        self.api.list(&self.pager(), self.api.request(Method::GET, path, &query)?, what, each).await
    }

    /// IT Glue's lists: rows under `data`, numbered pages until the last (see [`last_page`]).
    pub(super) fn pager(&self) -> Pager {
        Pager {
            rows: Rows::Under("data"),
            next: NextPage::Numbered { param: "page[number]", is_last: last_page },
            page_size: self.page_size,
        }
    }

    /// How many records a list holds: `meta.total-count` of a one-record page, or (when the
    /// server does not say) the records counted page by page.
    pub(super) async fn count(&self, path: &str, filters: &[(&str, String)], what: &str) -> Result<u64, DocError> {
        let mut query = filters.to_vec();
        query.push(("page[size]", "1".to_string()));
        query.push(("page[number]", "1".to_string()));
        let body = self.get_found(path, &query, what).await?;
        if let Some(total) = Fields::of(&body).uint("/meta/total-count") {
            return Ok(total);
        }
        tracing::debug!(what, "no meta.total-count: counting page by page");
        Ok(self.list(path, filters, what, |_| Ok(())).await?.len() as u64)
    }

    /// The flexible asset types of the account: `(id, name)`.
    pub(super) async fn flexible_asset_types(&self) -> Result<Vec<(String, String)>, DocError> {
        self.list("flexible_asset_types", &[], "flexible asset types", flexible_asset_type).await
    }
}

/// A flexible asset type: `(id, name)`.
pub(super) fn flexible_asset_type(record: &Value) -> Result<(String, String), DocError> {
    let id = id_text(record.get("id")).ok_or_else(|| invalid("a flexible asset type without an id"))?;
    let name = record.pointer("/attributes/name").and_then(Value::as_str).unwrap_or("").to_string();
    Ok((id, name))
}

pub(super) fn parse_organization(record: &Value) -> Result<Organization, DocError> {
    let id = id_text(record.get("id")).ok_or_else(|| invalid("an organization without an id"))?;
    let attributes = record.get("attributes").cloned().unwrap_or(Value::Null);
    let attr = |key: &str| Fields::of(&attributes).id(key);
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

pub(super) fn parse_export(record: &Value) -> Result<Export, DocError> {
    let id = id_text(record.get("id")).ok_or_else(|| invalid("an export without an id"))?;
    let attributes = record.get("attributes").cloned().unwrap_or(Value::Null);
    let attributes = Fields::of(&attributes);
    Ok(Export {
        id,
        organization_id: attributes.id("organization-id").unwrap_or_default(),
        status: attributes.id("status").unwrap_or_else(|| "unknown".into()),
        download_url: attributes.id("download-url"),
    })
}

/// Whether a page is the last: by `meta.total-pages`, else by `meta.next-page` or
/// `links.next`, else by a short page.
fn last_page(page: &PageSeen<'_>) -> bool {
    let body = page.body;
    if let Some(total_pages) = body.pointer("/meta/total-pages").and_then(Value::as_u64) {
        return page.number >= total_pages;
    }
    if let Some(next) = body.pointer("/meta/next-page") {
        return next.is_null();
    }
    if let Some(links) = body.get("links").and_then(Value::as_object) {
        return links.get("next").is_none_or(Value::is_null);
    }
    page.rows < page.page_size as usize
}

/// The message of a JSON:API error document (`{"errors":[{"status","title","detail"}]}`),
/// else the start of the body.
fn read_error(response: &HttpResponse) -> ErrorBody {
    let parts: Vec<String> = response
        .json()
        .ok()
        .and_then(|body| body.get("errors").and_then(Value::as_array).cloned())
        .unwrap_or_default()
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
    ErrorBody::message(if parts.is_empty() { response.body_excerpt() } else { parts.join("; ") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn is_last(body: Value, number: u64, rows: usize) -> bool {
        last_page(&PageSeen { body: &body, number, rows, rows_so_far: 0, page_size: 1000 })
    }

    #[test]
    fn pages_end_by_total_pages_next_links_or_a_short_page() {
        assert!(!is_last(json!({"meta": {"total-pages": 2}}), 1, 1000));
        assert!(is_last(json!({"meta": {"total-pages": 2}}), 2, 5));
        assert!(is_last(json!({"meta": {"next-page": null}}), 1, 1000));
        assert!(!is_last(json!({"links": {"next": "https://x/?page[number]=2"}}), 1, 1000));
        assert!(is_last(json!({}), 3, 10));
        assert!(!is_last(json!({}), 3, 1000));
    }

    #[test]
    fn organizations_and_exports_parse_with_string_or_number_ids() {
        let org = parse_organization(&json!({
            "id": "9001", "type": "organizations",
            "attributes": {"name": "Contoso Dental", "psa-id": 250, "psa-integration-type": "manage",
                            "organization-status-name": "Active"}
        }))
        .unwrap();
        assert_eq!((org.id.as_str(), org.psa_id.as_deref()), ("9001", Some("250")));
        assert!(parse_organization(&json!({"id": 1, "attributes": {}})).is_err());
        let export = parse_export(&json!({
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
        assert_eq!(read_error(&response).message, "Unprocessable Entity: must exist");
    }
}
