//! The Autotask connection: zone lookup, header credentials, queries with cursor paging,
//! writes answered by `{"itemId"}`, picklists, and the hourly budget's starting point.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::AutotaskSettings;
use crate::adapters::vendor_http::{
    CredentialValues, ErrorBody, Fields, NextPage, Pager, RotatingHeaders, Rows, StaticHeaders, VendorHttp, holds,
    positive_id, with_trailing_slash,
};
use crate::error::PsaError;
use crate::http::origin::{host_of, is_loopback, secure_url};
use crate::http::{HttpClient, HttpRequest, HttpResponse, HttpSettings, Redactor, Retry, SMALL_BODY_BYTES};
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// The most records Autotask returns per page.
const PAGE_SIZE: u32 = 500;

/// A picklist field's values, value → label.
pub(super) type Picklist = HashMap<i64, String>;

pub(super) struct CompanyPicklists {
    pub company_type: Picklist,
    pub classification: Picklist,
}

pub struct AutotaskClient {
    http: HttpClient,
    pub(super) settings: AutotaskSettings,
    /// The zone's API, once its base URL is known (configured, or looked up once).
    api: OnceCell<VendorHttp<PsaError>>,
    picklists: OnceCell<CompanyPicklists>,
    /// Set once the budget has been told the database's usage this hour.
    budget_synced: OnceCell<()>,
    /// Where the credentials are read on every request, when they rotate.
    secrets: Option<Arc<dyn SecretStore>>,
}

const USERNAME: &str = "AUTOTASK_USERNAME";
const SECRET: &str = "AUTOTASK_SECRET";
const INTEGRATION_CODE: &str = "AUTOTASK_INTEGRATION_CODE";

/// Autotask's three credential headers.
fn credential_headers(values: &CredentialValues) -> StaticHeaders {
    let value = |key: &str| values.get(key).cloned().unwrap_or_else(|| SecretString::new(String::new()));
    StaticHeaders::default()
        .secret("apiintegrationcode", value(INTEGRATION_CODE))
        .plain("username", value(USERNAME).expose())
        .secret("secret", value(SECRET))
}

pub(super) fn config_error(message: impl Into<String>) -> PsaError {
    PsaError::Configuration { message: message.into() }
}

fn invalid(message: String) -> PsaError {
    PsaError::InvalidResponse { message }
}

/// Whether a 429 is Autotask's hourly threshold rather than its thread limit ("Thread
/// Threshold Exceeded").
fn not_the_thread_limit(response: &HttpResponse) -> bool {
    !String::from_utf8_lossy(&response.body).to_ascii_lowercase().contains("thread")
}

/// Whether a zone URL the lookup answered may receive our credentials: https on Autotask's
/// own domain (`webservices{N}.autotask.net`, docs/vendors/autotask.md#zones-and-base-url),
/// or plain http to a loopback address (the sandbox).
pub(super) fn is_autotask_zone(zone: &url::Url) -> bool {
    let on_autotask_domain = zone.scheme() == "https"
        && zone.port().is_none()
        && zone.host_str().is_some_and(|host| host.to_ascii_lowercase().ends_with(".autotask.net"));
    on_autotask_domain || (zone.scheme() == "http" && is_loopback(zone))
}

pub(super) fn numeric_id(id: &str, what: &str) -> Result<i64, PsaError> {
    positive_id(id, "Autotask", what)
}

impl AutotaskClient {
    pub fn new(settings: AutotaskSettings, mut http: HttpSettings) -> Result<Self, PsaError> {
        // A 429 for the thread limit is about concurrency, not the hourly window: only the
        // other kind counts the hour as spent (docs/vendors/autotask.md#rate-limits).
        http.window_refusal = not_the_thread_limit;
        for (name, value) in [
            ("AUTOTASK_USERNAME", settings.username.as_str()),
            ("AUTOTASK_SECRET", settings.secret.expose()),
            ("AUTOTASK_INTEGRATION_CODE", settings.integration_code.expose()),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(format!("{name} is not set")));
            }
        }
        let redactor =
            Redactor::new([settings.secret.expose().to_string(), settings.integration_code.expose().to_string()]);
        let http = HttpClient::new("autotask", http, redactor).map_err(|e| config_error(e.to_string()))?;
        let client = Self {
            http,
            settings,
            api: OnceCell::new(),
            picklists: OnceCell::new(),
            budget_synced: OnceCell::new(),
            secrets: None,
        };
        if let Some(url) = client.settings.url.as_deref().filter(|u| !u.trim().is_empty()) {
            let url = secure_url("AUTOTASK_URL", url).map_err(config_error)?;
            let _ = client.api.set(client.zone_api(url));
        }
        secure_url("AUTOTASK_ZONE_LOOKUP_URL", &client.settings.zone_lookup_url).map_err(config_error)?;
        Ok(client)
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Read the credentials through `store` on every request (its cache decides how
    /// often it is asked), and once more after a refusal: a rotated secret is picked up
    /// without a restart (vendor_http::RotatingHeaders).
    pub fn with_secret_store(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.secrets = Some(store);
        if let Some(api) = self.api.take() {
            let _ = self.api.set(api.with_credentials(self.rotating(self.secrets.clone().expect("just set"))));
        }
        self
    }

    fn at_start(&self) -> CredentialValues {
        HashMap::from([
            (USERNAME, SecretString::new(self.settings.username.clone())),
            (SECRET, self.settings.secret.clone()),
            (INTEGRATION_CODE, self.settings.integration_code.clone()),
        ])
    }

    fn rotating(&self, store: Arc<dyn SecretStore>) -> RotatingHeaders {
        RotatingHeaders::new(store, self.at_start(), Box::new(credential_headers))
    }

    fn zone_api(&self, base: url::Url) -> VendorHttp<PsaError> {
        match &self.secrets {
            Some(store) => {
                VendorHttp::new(self.http.clone(), "Autotask", base, self.rotating(store.clone()), read_error)
            }
            None => {
                VendorHttp::new(self.http.clone(), "Autotask", base, credential_headers(&self.at_start()), read_error)
            }
        }
    }

    /// The zone's API. Before the first request of this process the budget learns the
    /// database's usage this hour: a fresh Lambda or CLI process would otherwise believe the
    /// whole hour's budget is its own.
    pub(super) async fn api(&self) -> Result<&VendorHttp<PsaError>, PsaError> {
        let api = self.api.get_or_try_init(|| async { Ok(self.zone_api(self.look_up_zone().await?)) }).await?;
        if self.http.budget().is_some() {
            self.budget_synced.get_or_try_init(|| self.sync_budget(api)).await?;
        }
        Ok(api)
    }

    /// The zone's base URL, looked up by user name.
    async fn look_up_zone(&self) -> Result<url::Url, PsaError> {
        let lookup_error = |e: url::ParseError| config_error(format!("AUTOTASK_ZONE_LOOKUP_URL: {e}"));
        let lookup = secure_url("AUTOTASK_ZONE_LOOKUP_URL", &self.settings.zone_lookup_url).map_err(config_error)?;
        let mut url = with_trailing_slash(lookup).join("zoneInformation").map_err(lookup_error)?;
        url.query_pairs_mut().append_pair("user", &self.settings.username);
        // The lookup needs no credentials (the wrappers send none); we send none.
        let request = HttpRequest::new(Method::GET, url).max_body(SMALL_BODY_BYTES);
        let response = self.http.send(request).await.map_err(PsaError::from_http)?;
        self.zone_answer(&response)
    }

    /// The zone base URL the lookup answered: within Autotask's domain, else refused.
    pub(super) fn zone_answer(&self, response: &HttpResponse) -> Result<url::Url, PsaError> {
        if !response.is_success() {
            let message = self.http.redactor().scrub(&error_messages(response));
            return Err(config_error(format!(
                "Autotask zone lookup for user '{}' failed (HTTP {}): {message}; set AUTOTASK_URL or check AUTOTASK_USERNAME",
                self.settings.username, response.status
            )));
        }
        let body = response.json().map_err(|e| invalid(format!("zoneInformation: {e}")))?;
        let zone_url =
            body.get("url").and_then(Value::as_str).ok_or_else(|| invalid("zoneInformation has no url".into()))?;
        let zone = url::Url::parse(zone_url).map_err(|e| invalid(format!("zoneInformation url: {e}")))?;
        if !is_autotask_zone(&zone) {
            return Err(invalid(format!(
                "the zone lookup answered a base URL outside Autotask's domain ({}://{}): refused, credentials go only to https://*.autotask.net; set AUTOTASK_URL",
                zone.scheme(),
                host_of(&zone)
            )));
        }
        let zone_name = body.get("zoneName").and_then(Value::as_str).unwrap_or_default();
        tracing::info!(zone = %zone_name, url = %zone, "Autotask zone found");
        Ok(zone)
    }

    /// Tell the budget how much of this hour the database has used. The probe is auxiliary:
    /// only refused credentials (or a spent budget) stop the run. When the usage cannot be
    /// read (a database whose `ThresholdInformation` answers 404, a server error) the run
    /// goes on assuming the database has already used the whole reserve it leaves to other
    /// integrations: conservative (it starts with less room than it may have), and no worse
    /// than the truth by more than the reserve, while Autotask's own 429 remains the backstop.
    async fn sync_budget(&self, api: &VendorHttp<PsaError>) -> Result<(), PsaError> {
        let Some(budget) = self.http.budget() else { return Ok(()) };
        let used = match self.usage(api).await {
            Ok((used, threshold)) => {
                tracing::info!(used, threshold, "Autotask request usage this hour");
                used
            }
            Err(error @ (PsaError::PermissionDenied { .. } | PsaError::BudgetExhausted { .. })) => return Err(error),
            Err(error) => {
                let assumed = u64::from(self.settings.budget_reserve);
                tracing::warn!(%error, assumed_used = assumed, "Autotask request usage unknown; assuming the reserve is spent");
                assumed
            }
        };
        budget.record_external(used).await;
        let remaining = budget.remaining().await;
        tracing::info!(remaining, "Autotask request budget for this hour");
        Ok(())
    }

    /// `GET /ThresholdInformation`: requests used this hour, and the threshold.
    pub(super) async fn usage(&self, api: &VendorHttp<PsaError>) -> Result<(u64, Option<u64>), PsaError> {
        let request = api.request(Method::GET, "ThresholdInformation", &[])?.endpoint("ThresholdInformation");
        let what = "threshold information";
        let body = api.read(request, what).await?.ok_or_else(|| PsaError::NotFound { what: what.into() })?;
        Ok(usage_of(&body))
    }

    /// Every record of a query, each turned into a `T` as its page arrives, following
    /// `pageDetails.nextPageUrl`. The same body is POSTed to the next URL (see the module doc).
    pub(super) async fn query<T>(
        &self,
        entity: &str,
        filter: Value,
        what: &str,
        each: impl FnMut(&Value) -> Result<T, PsaError> + Send,
    ) -> Result<Vec<T>, PsaError> {
        let api = self.api().await?;
        let body = json!({ "filter": filter, "MaxRecords": PAGE_SIZE });
        // A query changes nothing, so it may be retried like a read.
        let request = api
            .request(Method::POST, &format!("{entity}/query"), &[])?
            .endpoint(entity)
            .json_body(&body)
            .retry(Retry::Idempotent);
        api.list(&PAGER, request, what, each).await
    }

    /// The zone's API when its base URL is known (configured, or looked up already).
    #[cfg(feature = "fuzzing")]
    pub(super) fn known_api(&self) -> Option<&VendorHttp<PsaError>> {
        self.api.get()
    }

    /// `GET /{Entity}/{id}` → the `item`, or `None`.
    pub(super) async fn get_item(&self, entity: &str, id: i64, what: &str) -> Result<Option<Value>, PsaError> {
        let api = self.api().await?;
        let request = api.request(Method::GET, &format!("{entity}/{id}"), &[])?.endpoint(entity);
        Ok(api.read(request, what).await?.and_then(|body| body.get("item").filter(|item| !item.is_null()).cloned()))
    }

    async fn picklist(&self, entity: &str, field: &str) -> Result<Picklist, PsaError> {
        let api = self.api().await?;
        let what = format!("{entity} field information");
        let request = api.request(Method::GET, &format!("{entity}/entityInformation/fields"), &[])?.endpoint(entity);
        // Not there is not "the company is missing": it names what failed.
        let body = api.read(request, &what).await?.ok_or_else(|| invalid(format!("{what}: not found")))?;
        Ok(picklist_of(&body, field))
    }

    pub(super) async fn company_picklists(&self) -> Result<&CompanyPicklists, PsaError> {
        self.picklists
            .get_or_try_init(|| async {
                Ok(CompanyPicklists {
                    company_type: self.picklist("Companies", "companyType").await?,
                    classification: self.picklist("Companies", "classification").await?,
                })
            })
            .await
    }

    /// Send a write and read the `itemId` of the answer (`None` when the body has none).
    /// `endpoint` is the unit of the per-endpoint thread limit.
    async fn write(
        &self,
        method: Method,
        path: &str,
        endpoint: &str,
        body: &Value,
        retry: Retry,
        what: &str,
    ) -> Result<Option<i64>, PsaError> {
        let api = self.api().await?;
        let request = api.request(method, path, &[])?.endpoint(endpoint).json_body(body).retry(retry);
        Ok(api.write(request, what).await?.and_then(|answer| Fields::ignoring_case(&answer).int("itemId")))
    }

    /// A `PATCH` of the record `id`: the answer, if it names an item, must name this one.
    pub(super) async fn patch(
        &self,
        path: &str,
        endpoint: &str,
        id: i64,
        body: &Value,
        what: &str,
    ) -> Result<(), PsaError> {
        // Setting fields is idempotent, but a lost answer is read back first: an applied
        // PATCH is not sent twice (docs/vendors/README.md#lost-answers). The record is read
        // at its entity's own URL (`Contacts/{id}`, not the parent path written to).
        let api = self.api().await?;
        let request =
            api.request(Method::PATCH, path, &[])?.endpoint(endpoint).json_body(body).retry(Retry::Idempotent);
        let read_path = format!("{}/{id}", path.rsplit('/').next().unwrap_or(path));
        let read_back = || async { Ok(api.get(&read_path, &[], what).await?.map(|answer| answer["item"].clone())) };
        let applied = |record: &Value| {
            body.as_object().is_some_and(|fields| fields.iter().all(|(k, v)| k == "id" || holds(&record[k], v)))
        };
        let answer = api.write_once(request, what, read_back, applied).await?;
        match answer.and_then(|answer| Fields::ignoring_case(&answer).int("itemId")) {
            Some(item_id) if item_id != id => Err(invalid(format!("{what}: Autotask answered itemId {item_id}"))),
            _ => Ok(()),
        }
    }

    /// A `POST` that creates a record; returns the new record's id.
    pub(super) async fn create(&self, path: &str, endpoint: &str, body: &Value, what: &str) -> Result<i64, PsaError> {
        // Never repeated after an unknown outcome (a second ticket or note): only on 429.
        self.write(Method::POST, path, endpoint, body, Retry::OnlyWhenThrottled, what)
            .await?
            .ok_or_else(|| invalid(format!("{what}: the answer has no itemId")))
    }
}

/// Autotask's queries: rows under `items`, the next page at `pageDetails.nextPageUrl`.
pub(super) const PAGER: Pager =
    Pager { rows: Rows::Under("items"), next: NextPage::BodyUrl("/pageDetails/nextPageUrl"), page_size: PAGE_SIZE };

/// `ThresholdInformation`: requests used this hour, and the threshold.
pub(super) fn usage_of(body: &Value) -> (u64, Option<u64>) {
    let body = Fields::ignoring_case(body);
    (body.uint("currentTimeframeRequestCount").unwrap_or(0), body.uint("externalRequestThreshold"))
}

/// The values of the picklist `field` in an `entityInformation/fields` answer.
pub(super) fn picklist_of(body: &Value, field: &str) -> Picklist {
    let fields = body.get("fields").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let wanted =
        fields.iter().find(|f| f.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(field)));
    let mut values = Picklist::new();
    for value in wanted.and_then(|f| f.get("picklistValues")).and_then(Value::as_array).into_iter().flatten() {
        let number = match value.get("value") {
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            Some(v) => v.as_i64(),
            None => None,
        };
        if let (Some(number), Some(label)) = (number, value.get("label").and_then(Value::as_str)) {
            values.insert(number, label.to_string());
        }
    }
    values
}

/// Autotask's error shape: the `errors[]` of the body, joined; else the body itself. A 500
/// whose message speaks of authentication, the user name, the integration code or the
/// secret is a refusal of the credentials (a bad user name or integration code answers 500).
fn read_error(response: &HttpResponse) -> ErrorBody {
    let message = error_messages(response);
    ErrorBody { authentication: response.status == 500 && looks_like_authentication(&message), message, code: None }
}

fn error_messages(response: &HttpResponse) -> String {
    let body = response.json().unwrap_or(Value::Null);
    let messages: Vec<String> = Fields::ignoring_case(&body)
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect())
        .unwrap_or_default();
    if messages.is_empty() { response.body_excerpt() } else { messages.join("; ") }
}

fn looks_like_authentication(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["authenticat", "user name", "username", "integration code", "integrationcode", "secret", "unauthorized"]
        .iter()
        .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_500s_are_told_from_other_500s() {
        assert!(looks_like_authentication("Unable to authenticate: the user name is not valid"));
        assert!(looks_like_authentication("The integration code is not valid"));
        assert!(!looks_like_authentication("Configuration item 25005 could not be updated: product locked"));
        let response = |status: u16| HttpResponse {
            status,
            headers: Default::default(),
            body: br#"{"errors":["The integration code is not valid"]}"#.to_vec(),
        };
        assert!(read_error(&response(500)).authentication);
        assert!(!read_error(&response(400)).authentication);
    }
}
