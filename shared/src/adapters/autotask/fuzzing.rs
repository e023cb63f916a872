//! Autotask's answers as a fuzz target feeds them (feature `fuzzing`, `offramp::fuzzing`):
//! the client's own pager, zone lookup, error reader and record parsers.

use std::sync::LazyLock;

use serde_json::Value;

use super::client::{CompanyPicklists, PAGER, picklist_of, usage_of};
use super::{AutotaskClient, AutotaskSettings, AutotaskTicketSettings, parse};
use crate::adapters::vendor_http::PageAt;
use crate::http::{HttpResponse, HttpSettings};
use crate::secret::SecretString;

static CLIENT: LazyLock<AutotaskClient> = LazyLock::new(|| {
    let settings = AutotaskSettings {
        url: Some("https://webservices2.autotask.net/atservicesrest/v1.0".into()),
        zone_lookup_url: super::DEFAULT_ZONE_LOOKUP_URL.into(),
        username: "fuzz@example.com".into(),
        secret: SecretString::new("fuzz-secret".to_string()),
        integration_code: SecretString::new("fuzz-integration-code".to_string()),
        archived_ci_types: vec![3],
        tickets: AutotaskTicketSettings::default(),
        budget_reserve: 500,
    };
    AutotaskClient::new(settings, HttpSettings::default()).expect("the fuzz client's settings are valid")
});

/// `response` as the answer to a query page, a read, a write and the zone lookup; every row
/// through every record parser, with the picklists and usage read from the body.
pub fn answer(response: &HttpResponse) {
    let client = &*CLIENT;
    let api = client.known_api().expect("the zone is configured");
    let _ = client.zone_answer(response);
    let body = response.json().unwrap_or(Value::Null);
    let picklists = CompanyPicklists {
        company_type: picklist_of(&body, "companyType"),
        classification: picklist_of(&body, "classification"),
    };
    let _ = usage_of(&body);
    let url = api.url("ConfigurationItems/query", &[]).expect("a valid path");
    let at = PageAt { url: &url, number: 1, rows_so_far: 0 };
    let _ = api.page_answer(&PAGER, at, response, "configuration items", |row| {
        let _ = parse::company(row, &picklists);
        let _ = parse::configuration(row, &client.settings.archived_ci_types);
        let _ = parse::contact(row);
        let _ = parse::ticket(row, client.settings.tickets.complete_status);
        Ok(())
    });
    let _ = api.read_answer(response, "configuration item 1");
    let _ = api.write_answer(response, "configuration item 1");
}
