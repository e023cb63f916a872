//! The HaloPSA connection: URLs under `/api`, the OAuth token, numbered pages, and upserts.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::HaloSettings;
use super::errors::read_error;
use super::token::ClientCredentials;
use crate::adapters::vendor_http::{
    Fields, NextPage, PageSeen, Pager, Rows, VendorHttp, WriteAnswer, positive_id, with_trailing_slash,
};
use crate::domain::Configuration;
use crate::error::PsaError;
use crate::http::origin::secure_url;
use crate::http::{HttpClient, HttpSettings, Redactor, Retry};

const PAGE_SIZE: u32 = 500;

pub struct HaloClient {
    pub(super) api: VendorHttp<PsaError>,
    pub(super) credentials: Arc<ClientCredentials>,
    pub(super) settings: HaloSettings,
    /// Rows asked for per page of a list ([`PAGE_SIZE`] unless [`HaloClient::with_page_size`]).
    page_size: u32,
}

pub(super) fn config_error(message: impl Into<String>) -> PsaError {
    PsaError::Configuration { message: message.into() }
}

pub(super) fn numeric_id(id: &str, what: &str) -> Result<i64, PsaError> {
    positive_id(id, "HaloPSA", what)
}

impl HaloClient {
    pub fn new(settings: HaloSettings, http: HttpSettings) -> Result<Self, PsaError> {
        for (name, value) in
            [("HALO_CLIENT_ID", settings.client_id.as_str()), ("HALO_CLIENT_SECRET", settings.client_secret.expose())]
        {
            if value.trim().is_empty() {
                return Err(config_error(format!("{name} is not set")));
            }
        }
        let (api, token_url) = urls(&settings)?;
        let redactor = Redactor::new([settings.client_secret.expose().to_string()]);
        let http = HttpClient::new("halo", http, redactor).map_err(|e| config_error(e.to_string()))?;
        let credentials = Arc::new(ClientCredentials::new(
            token_url,
            settings.client_id.clone(),
            settings.client_secret.clone(),
            settings.scope.clone(),
        ));
        let api = VendorHttp::new(http, "HaloPSA", api, credentials.clone(), read_error);
        Ok(Self { api, credentials, settings, page_size: PAGE_SIZE })
    }

    pub fn http(&self) -> &HttpClient {
        self.api.http()
    }

    /// Read the client secret through `store` before each token request (its cache decides
    /// how often it is asked), and once more after the token endpoint refuses it.
    pub fn with_secret_store(self, store: Arc<dyn crate::ports::SecretStore>) -> Self {
        self.credentials.read_secret_from(store);
        self
    }

    /// Ask for `page_size` rows per page (1..=1000) instead of 500: for tenants whose
    /// server caps pages lower (the maximum is UNCONFIRMED), and for tests of paging.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, 1000);
        self
    }

    /// Every row of a list endpoint (`key` is the array's name in the response), each
    /// turned into a `T` as its page arrives.
    pub(super) async fn list<T>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        key: &'static str,
        what: &str,
        each: impl FnMut(&Value) -> Result<T, PsaError> + Send,
    ) -> Result<Vec<T>, PsaError> {
        let mut query: Vec<(&str, String)> = filters.to_vec();
        query.extend([
            ("pageinate", "true".to_string()),
            ("page_size", self.page_size.to_string()),
            ("page_no", "1".to_string()),
        ]);
        self.api.list(&self.pager(key), self.api.request(Method::GET, path, &query)?, what, each).await
    }

    /// HaloPSA's lists: rows under `key`, numbered pages until `record_count` is reached.
    pub(super) fn pager(&self, key: &'static str) -> Pager {
        Pager {
            rows: Rows::Under(key),
            next: NextPage::Numbered { param: "page_no", is_last },
            page_size: self.page_size,
        }
    }

    /// `POST /api/{path}` with a JSON array; the saved rows when Halo returns them.
    pub(super) async fn post(
        &self,
        path: &str,
        body: &Value,
        retry: Retry,
        what: &str,
    ) -> Result<Vec<Value>, PsaError> {
        let request = self.api.request(Method::POST, path, &[])?.json_body(body).retry(retry);
        Ok(saved_rows(self.api.write(request, what).await?))
    }

    /// An upsert of `rows` (each with its `id`), never sent blind after its answer is lost:
    /// each row's record is read back at `{path}/{id}` and only the rows whose record does
    /// not yet show `applied` are sent again, unrepeated, at most the connection's
    /// `max_retries + 1` sends in all (docs/vendors/README.md#lost-answers). The saved (or
    /// read-back) records by id.
    pub(super) async fn upsert_once(
        &self,
        path: &str,
        mut rows: Vec<(i64, Value)>,
        applied: impl Fn(&Value) -> bool,
        what: &str,
    ) -> Result<HashMap<i64, Value>, PsaError> {
        let sends = self.api.http().settings().max_retries.saturating_add(1);
        let mut saved = HashMap::new();
        let mut lost = String::new();
        for _ in 0..sends {
            let body = Value::Array(rows.iter().map(|(_, row)| row.clone()).collect());
            let request = self.api.request(Method::POST, path, &[])?.json_body(&body);
            match self.api.write_unrepeated(request, what).await? {
                WriteAnswer::Answered(answer) => {
                    saved.extend(by_id(saved_rows(answer)));
                    return Ok(saved);
                }
                WriteAnswer::Lost(why) => lost = why,
            }
            tracing::warn!(vendor = "HaloPSA", what, lost = %lost, "the answer to an upsert was lost; reading back");
            let mut again = Vec::new();
            for (id, row) in rows {
                match self.api.get(&format!("{path}/{id}"), &[], &format!("{path} {id}")).await? {
                    Some(record) if applied(&record) => {
                        saved.insert(id, record);
                    }
                    // Gone since: nothing to send; the caller's read-back reports it.
                    None => {}
                    Some(_) => again.push((id, row)),
                }
            }
            if again.is_empty() {
                return Ok(saved);
            }
            rows = again;
        }
        Err(PsaError::Connection {
            message: format!("HaloPSA: {what}: every answer was lost and the records do not show the write ({lost})"),
        })
    }

    /// One upsert of `inactive` for these assets; the saved rows by id when HaloPSA returns them.
    pub(super) async fn post_inactive(
        &self,
        configs: &[&Configuration],
        inactive: bool,
    ) -> Result<HashMap<i64, Value>, PsaError> {
        let mut rows = Vec::with_capacity(configs.len());
        for config in configs {
            let id = numeric_id(&config.id, "asset")?;
            // HaloPSA rejects ids sent as floats (95.0): send integers.
            rows.push((id, json!({ "id": id, "inactive": inactive })));
        }
        let what = match configs {
            [one] => format!("asset {}", one.id),
            many => format!("{} assets", many.len()),
        };
        self.upsert_once("asset", rows, |record| Fields::of(record).flag("inactive") == Some(inactive), &what).await
    }
}

/// The rows of an upsert's answer: an array, one object, or nothing.
pub(super) fn saved_rows(answer: Option<Value>) -> Vec<Value> {
    match answer {
        Some(Value::Array(rows)) => rows,
        Some(row @ Value::Object(_)) => vec![row],
        _ => Vec::new(),
    }
}

pub(super) fn by_id(rows: Vec<Value>) -> HashMap<i64, Value> {
    rows.into_iter().filter_map(|row| Fields::of(&row).int("id").map(|id| (id, row))).collect()
}

/// The API base and the token URL: `HALO_URL` given with or without the trailing `/api`;
/// the authorisation server `HALO_AUTH_URL`, else `{root}/auth`.
fn urls(settings: &HaloSettings) -> Result<(url::Url, url::Url), PsaError> {
    let root = with_trailing_slash(secure_url("HALO_URL", &settings.url).map_err(config_error)?);
    let root = if root.path().trim_end_matches('/').to_ascii_lowercase().ends_with("/api") {
        root.join("..").map_err(|e| config_error(format!("HALO_URL: {e}")))?
    } else {
        root
    };
    let api = root.join("api/").map_err(|e| config_error(format!("HALO_URL: {e}")))?;
    let auth = match settings.auth_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => with_trailing_slash(secure_url("HALO_AUTH_URL", url).map_err(config_error)?),
        None => root.join("auth/").map_err(|e| config_error(format!("HALO_URL: {e}")))?,
    };
    let mut token_url = auth.join("token").map_err(|e| config_error(format!("HALO_AUTH_URL: {e}")))?;
    if let Some(tenant) = settings.tenant.as_deref().filter(|t| !t.trim().is_empty()) {
        token_url.query_pairs_mut().append_pair("tenant", tenant.trim());
    }
    Ok((api, token_url))
}

/// The last page: all of `record_count` seen, else a page shorter than the `page_size` the
/// server says it used (or the one asked for).
fn is_last(page: &PageSeen<'_>) -> bool {
    let body = Fields::of(page.body);
    match body.uint("record_count") {
        Some(total) => page.rows_so_far >= total,
        None => (page.rows as u64) < body.uint("page_size").unwrap_or(u64::from(page.page_size)).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpResponse;

    #[test]
    fn every_error_shape_yields_its_message() {
        let response =
            |body: &str| HttpResponse { status: 400, headers: Default::default(), body: body.as_bytes().to_vec() };
        let message = |body: &str| read_error(&response(body)).message;
        assert_eq!(message(r#"{"resultCode":1,"errorMessage":"locked"}"#), "locked");
        assert_eq!(message(r#"{"ClassName":"System.Exception","Message":"boom"}"#), "boom");
        assert_eq!(message(r#"{"error":"invalid_client"}"#), "invalid_client");
        assert_eq!(message("Rate Limit Reached"), "Rate Limit Reached");
    }
}
