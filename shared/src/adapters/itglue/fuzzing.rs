//! IT Glue's answers as a fuzz target feeds them (feature `fuzzing`, `offramp::fuzzing`):
//! the client's own pager, JSON:API error reader and record parsers.

use std::sync::LazyLock;

use super::client::{flexible_asset_type, parse_export, parse_organization};
use super::{ItGlueClient, ItGlueSettings};
use crate::adapters::vendor_http::PageAt;
use crate::http::{HttpResponse, HttpSettings};
use crate::secret::SecretString;

static CLIENT: LazyLock<ItGlueClient> = LazyLock::new(|| {
    let settings =
        ItGlueSettings { url: "https://api.itglue.com".into(), api_key: SecretString::new("ITG.fuzz-key".to_string()) };
    ItGlueClient::new(settings, HttpSettings::default()).expect("the fuzz client's settings are valid")
});

/// `response` as a list page, a read (an organization, an export) and a write; every row
/// through every record parser.
pub fn answer(response: &HttpResponse) {
    let client = &*CLIENT;
    let api = &client.api;
    let url = api.url("organizations", &[("page[number]", "1".into())]).expect("a valid path");
    let at = PageAt { url: &url, number: 1, rows_so_far: 0 };
    let _ = api.page_answer(&client.pager(), at, response, "organizations", |row| {
        let _ = parse_organization(row);
        let _ = parse_export(row);
        let _ = flexible_asset_type(row);
        Ok(())
    });
    for answer in [api.read_answer(response, "organization"), api.write_answer(response, "export request")] {
        if let Some(data) = answer.ok().flatten().as_ref().and_then(|body| body.get("data")) {
            let _ = parse_organization(data);
            let _ = parse_export(data);
            let _ = data.as_array().map(|rows| rows.iter().map(flexible_asset_type).count());
        }
    }
}
