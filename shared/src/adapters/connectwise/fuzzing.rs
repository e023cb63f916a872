//! ConnectWise's answers as a fuzz target feeds them (feature `fuzzing`, `offramp::fuzzing`):
//! the client's own pager, error reader and record parsers, nothing re-implemented.

use std::sync::LazyLock;

use serde_json::Value;

use super::client::{StatusRecord, patch_applied, status_record, status_table};
use super::{ConnectWiseClient, ConnectWiseSettings, parse};
use crate::adapters::vendor_http::PageAt;
use crate::http::{HttpResponse, HttpSettings};
use crate::secret::SecretString;

static CLIENT: LazyLock<ConnectWiseClient> = LazyLock::new(|| {
    let settings = ConnectWiseSettings {
        url: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0".into(),
        company_id: "fuzz".into(),
        public_key: SecretString::new("fuzz-public-key".to_string()),
        private_key: SecretString::new("fuzz-private-key".to_string()),
        client_id: SecretString::new("fuzz-client-id".to_string()),
        inactive_status: "Inactive".into(),
        closed_ticket_status: ">Closed".into(),
    };
    ConnectWiseClient::new(settings, HttpSettings::default()).expect("the fuzz client's settings are valid")
});

/// `response` as the answer to a list page, a read and a write; every row through every
/// record parser, the statuses table, and a JSON-Patch check against the body.
pub fn answer(response: &HttpResponse) {
    let client = &*CLIENT;
    let api = &client.api;
    let url = api.url("company/configurations", &[("page", "1".into())]).expect("a valid path");
    let at = PageAt { url: &url, number: 1, rows_so_far: 0 };
    let mut rows = Vec::new();
    let _ = api.page_answer(&client.pager(), at, response, "configurations", |row| {
        rows.push(row.clone());
        Ok(())
    });
    let statuses: Vec<StatusRecord> = rows.iter().filter_map(|row| status_record(row).ok()).collect();
    let fallback = StatusRecord { id: 1, description: "Inactive".into(), closed_flag: false };
    let table = status_table(statuses, "Inactive")
        .or_else(|_| status_table(vec![fallback], "Inactive"))
        .expect("a table with its inactive status");
    let body = response.json().unwrap_or(Value::Null);
    for row in &rows {
        let _ = parse::company(row);
        let _ = parse::configuration(row, &table);
        let _ = parse::contact(row);
        let _ = parse::ticket(row);
        let _ = parse::contact_email(row);
        let _ = patch_applied(row, &body);
    }
    let _ = api.read_answer(response, "configuration 1");
    let _ = api.write_answer(response, "configuration 1");
}
