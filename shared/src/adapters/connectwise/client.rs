//! The ConnectWise connection: credentials, requests, paging and the status table.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::ConnectWiseSettings;
use crate::adapters::vendor_http::{
    CredentialValues, ErrorBody, NextPage, Pager, RotatingHeaders, Rows, StaticHeaders, VendorHttp, holds, positive_id,
};
use crate::error::PsaError;
use crate::http::{HttpClient, HttpResponse, HttpSettings, Redactor, Retry};
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// The most records ConnectWise returns per page.
const PAGE_SIZE: u32 = 1000;

/// A configuration status record (`/company/configurations/statuses`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatusRecord {
    pub id: i64,
    pub description: String,
    #[serde(default)]
    pub closed_flag: bool,
}

#[derive(Debug)]
pub(super) struct StatusTable {
    pub by_id: HashMap<i64, StatusRecord>,
    pub inactive: StatusRecord,
}

pub struct ConnectWiseClient {
    pub(super) api: VendorHttp<PsaError>,
    /// Records per list request; [`PAGE_SIZE`] unless a test asks for smaller pages.
    page_size: u32,
    inactive_status_name: String,
    /// `OFFRAMP_CW_CLOSED_TICKET_STATUS`: a status id or a name on the ticket's board.
    pub(super) closed_ticket_status: String,
    statuses: OnceCell<StatusTable>,
    /// The credentials as configured at start, by setting name.
    at_start: CredentialValues,
}

const COMPANY_ID: &str = "CONNECTWISE_COMPANY_ID";
const PUBLIC_KEY: &str = "CONNECTWISE_PUBLIC_KEY";
const PRIVATE_KEY: &str = "CONNECTWISE_PRIVATE_KEY";
const CLIENT_ID: &str = "CONNECTWISE_CLIENT_ID";

/// Basic auth of `company+public:private`, and the `clientId` header.
fn credential_headers(values: &CredentialValues) -> StaticHeaders {
    let value = |key: &str| values.get(key).map(SecretString::expose).unwrap_or_default();
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}+{}:{}",
        value(COMPANY_ID),
        value(PUBLIC_KEY),
        value(PRIVATE_KEY)
    ));
    StaticHeaders::default()
        .secret("authorization", SecretString::new(format!("Basic {token}")))
        .secret("clientid", SecretString::new(value(CLIENT_ID)))
}

impl ConnectWiseClient {
    pub fn new(settings: ConnectWiseSettings, http: HttpSettings) -> Result<Self, PsaError> {
        let config_error = |message: String| PsaError::Configuration { message };
        let base = crate::http::origin::secure_url("CONNECTWISE_URL", &settings.url).map_err(config_error)?;
        for (name, value) in [
            ("CONNECTWISE_COMPANY_ID", settings.company_id.as_str()),
            ("CONNECTWISE_PUBLIC_KEY", settings.public_key.expose()),
            ("CONNECTWISE_PRIVATE_KEY", settings.private_key.expose()),
            ("CONNECTWISE_CLIENT_ID", settings.client_id.expose()),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(format!("{name} is not set")));
            }
        }
        let at_start: CredentialValues = HashMap::from([
            (COMPANY_ID, SecretString::new(settings.company_id.clone())),
            (PUBLIC_KEY, settings.public_key.clone()),
            (PRIVATE_KEY, settings.private_key.clone()),
            (CLIENT_ID, settings.client_id.clone()),
        ]);
        let credentials = credential_headers(&at_start);
        let redactor = Redactor::new(
            [settings.public_key.expose(), settings.private_key.expose()]
                .into_iter()
                .chain(credentials.secret_forms())
                .map(str::to_string),
        );
        let http = HttpClient::new("connectwise", http, redactor).map_err(PsaError::from_http)?;
        let api = VendorHttp::new(http, "ConnectWise", base, credentials, read_error)
            .accept("application/vnd.connectwise.com+json");
        Ok(Self {
            api,
            page_size: PAGE_SIZE,
            inactive_status_name: settings.inactive_status,
            closed_ticket_status: settings.closed_ticket_status,
            statuses: OnceCell::new(),
            at_start,
        })
    }

    /// Read the credentials through `store` on every request (its cache decides how
    /// often it is asked), and once more after a refusal: a rotated key is picked up
    /// without a restart (vendor_http::RotatingHeaders).
    pub fn with_secret_store(mut self, store: Arc<dyn SecretStore>) -> Self {
        let rotating = RotatingHeaders::new(store, self.at_start.clone(), Box::new(credential_headers));
        self.api = self.api.with_credentials(rotating);
        self
    }

    pub fn http(&self) -> &HttpClient {
        self.api.http()
    }

    /// Smaller list pages (1 to 1000 records), so that tests can exercise paging on small data.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, PAGE_SIZE);
        self
    }

    /// Every record of a list endpoint filtered by `conditions`, following `Link: <…>; rel="next"`.
    pub(super) async fn list<T>(
        &self,
        path: &str,
        conditions: Option<String>,
        what: &str,
        each: impl FnMut(&Value) -> Result<T, PsaError> + Send,
    ) -> Result<Vec<T>, PsaError> {
        let mut query = Vec::new();
        if let Some(conditions) = conditions {
            query.push(("conditions", conditions));
        }
        query.extend([("pageSize", self.page_size.to_string()), ("page", "1".to_string())]);
        self.api.list(&self.pager(), self.api.request(Method::GET, path, &query)?, what, each).await
    }

    /// ConnectWise's lists: the body is the array, the next page is the `Link` header's.
    pub(super) fn pager(&self) -> Pager {
        Pager { rows: Rows::Bare, next: NextPage::LinkHeader, page_size: self.page_size }
    }

    /// `PATCH` a JSON-Patch array; the record as it is afterwards.
    pub(super) async fn patch(&self, path: &str, ops: &Value, what: &str) -> Result<Value, PsaError> {
        // `replace` and `remove` set a value: sending them twice leaves the same record, so
        // they may be retried.
        let request = self.api.request(Method::PATCH, path, &[])?.json_body(ops).retry(Retry::Idempotent);
        let read_back = || self.api.get(path, &[], what);
        let written = self.api.write_once(request, what, read_back, |record| patch_applied(record, ops)).await?;
        written.ok_or_else(|| invalid(format!("{what}: the answer is not JSON")))
    }

    /// `POST` a new record (not retried unless throttled: a repeat would create a second one).
    pub(super) async fn post(&self, path: &str, body: &Value, what: &str) -> Result<Value, PsaError> {
        let request = self.api.request(Method::POST, path, &[])?.json_body(body);
        self.api.write(request, what).await?.ok_or_else(|| invalid(format!("{what}: the answer is not JSON")))
    }

    pub(super) async fn statuses(&self) -> Result<&StatusTable, PsaError> {
        self.statuses.get_or_try_init(|| self.load_statuses()).await
    }

    async fn load_statuses(&self) -> Result<StatusTable, PsaError> {
        let records =
            self.list("company/configurations/statuses", None, "configuration statuses", status_record).await?;
        status_table(records, &self.inactive_status_name)
    }
}

/// One record of `/company/configurations/statuses`.
pub(super) fn status_record(record: &Value) -> Result<StatusRecord, PsaError> {
    StatusRecord::deserialize(record).map_err(|e| invalid(format!("configuration status: {e}")))
}

/// The tenant's statuses, with the one named `inactive_name` (ignoring case) as "inactive".
pub(super) fn status_table(records: Vec<StatusRecord>, inactive_name: &str) -> Result<StatusTable, PsaError> {
    let by_id: HashMap<i64, StatusRecord> = records.into_iter().map(|s| (s.id, s)).collect();
    let wanted = inactive_name.trim();
    let inactive =
        by_id.values().find(|s| s.description.eq_ignore_ascii_case(wanted)).cloned().ok_or_else(|| {
            PsaError::Configuration {
                message: format!(
                    "ConnectWise has no configuration status named '{inactive_name}' (known: {}); set OFFRAMP_CW_INACTIVE_STATUS",
                    sorted_names(&by_id)
                ),
            }
        })?;
    Ok(StatusTable { by_id, inactive })
}

fn invalid(message: String) -> PsaError {
    PsaError::InvalidResponse { message }
}

fn sorted_names(by_id: &HashMap<i64, StatusRecord>) -> String {
    let mut names: Vec<&str> = by_id.values().map(|s| s.description.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

pub(super) fn numeric_id(id: &str, what: &str) -> Result<i64, PsaError> {
    positive_id(id, "ConnectWise", what)
}

/// ConnectWise's error shape: `{"code","message","errors":[{"message"}]}`.
fn read_error(response: &HttpResponse) -> ErrorBody {
    let body = response.json().unwrap_or(Value::Null);
    let code = body.get("code").and_then(Value::as_str).map(str::to_string);
    let mut message =
        body.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| response.body_excerpt());
    if let Some(details) = body.get("errors").and_then(Value::as_array) {
        let details: Vec<&str> = details.iter().filter_map(|e| e.get("message").and_then(Value::as_str)).collect();
        if !details.is_empty() {
            message = format!("{message} ({})", details.join("; "));
        }
    }
    ErrorBody { message, code, authentication: false }
}

/// Whether `record` shows every operation of a JSON-Patch: each `replace` path holds its
/// value (an object value: each of its fields), each `remove` path is empty. Paths are
/// ConnectWise's `a/b` form.
pub(super) fn patch_applied(record: &Value, ops: &Value) -> bool {
    ops.as_array().is_some_and(|ops| {
        !ops.is_empty()
            && ops.iter().all(|op| {
                let path = format!("/{}", op["path"].as_str().unwrap_or_default());
                let found = record.pointer(&path).unwrap_or(&Value::Null);
                match op["op"].as_str() {
                    Some("replace") | Some("add") => holds(found, &op["value"]),
                    Some("remove") => found.is_null(),
                    _ => false,
                }
            })
    })
}

#[cfg(test)]
mod patch_tests {
    use serde_json::json;

    use super::patch_applied;

    #[test]
    fn a_patch_is_applied_when_the_record_holds_every_operation() {
        let record = json!({ "status": { "id": 2, "name": "Inactive" }, "inactiveFlag": true, "contact": null });
        assert!(patch_applied(&record, &json!([{ "op": "replace", "path": "status", "value": { "id": 2 } }])));
        assert!(!patch_applied(&record, &json!([{ "op": "replace", "path": "status", "value": { "id": 1 } }])));
        assert!(patch_applied(&record, &json!([{ "op": "replace", "path": "inactiveFlag", "value": true }])));
        assert!(patch_applied(&record, &json!([{ "op": "remove", "path": "contact" }])));
        assert!(!patch_applied(&record, &json!([])), "an empty patch proves nothing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_missing_a_key_is_a_configuration_error() {
        let settings = ConnectWiseSettings {
            url: "http://127.0.0.1:1/apis/3.0".into(),
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: "".into(),
            client_id: "cid".into(),
            inactive_status: "Inactive".into(),
            closed_ticket_status: ">Closed".into(),
        };
        let err = ConnectWiseClient::new(settings, HttpSettings::default()).err().unwrap();
        assert!(err.to_string().contains("CONNECTWISE_PRIVATE_KEY"), "{err}");
    }

    #[test]
    fn error_bodies_carry_code_message_and_details() {
        let response = HttpResponse {
            status: 400,
            headers: Default::default(),
            body:
                br#"{"code":"InvalidObject","message":"Contact is invalid","errors":[{"message":"owner is required"}]}"#
                    .to_vec(),
        };
        let body = read_error(&response);
        assert_eq!(body.code.as_deref(), Some("InvalidObject"));
        assert_eq!(body.message, "Contact is invalid (owner is required)");
    }
}
