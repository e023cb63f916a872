//! HaloPSA's answers as a fuzz target feeds them (feature `fuzzing`, `offramp::fuzzing`):
//! the client's own pager, token reader, error reader and record parsers.

use std::sync::LazyLock;
use std::time::Instant;

use super::client::{by_id, saved_rows};
use super::{HaloClient, HaloSettings, parse, token};
use crate::adapters::vendor_http::PageAt;
use crate::http::{HttpResponse, HttpSettings, Redactor};
use crate::secret::SecretString;

static CLIENT: LazyLock<HaloClient> = LazyLock::new(|| {
    let settings = HaloSettings {
        url: "https://fuzz.halopsa.com".into(),
        auth_url: None,
        tenant: None,
        client_id: "fuzz-client".into(),
        client_secret: SecretString::new("fuzz-client-secret".to_string()),
        scope: "all".into(),
        archived_status_ids: vec![4],
        update_batch: 50,
        note_outcome_id: 7,
        closed_ticket_status_id: 9,
        new_ticket_type_id: 1,
    };
    HaloClient::new(settings, HttpSettings::default()).expect("the fuzz client's settings are valid")
});

/// `response` as the token endpoint's answer, a list page (of each list's key), a read and a
/// write; every row through every record parser.
pub fn answer(response: &HttpResponse) {
    // A redactor per answer: each token it learns is this answer's alone.
    let _ = token::token_answer(&Redactor::new(["fuzz-client-secret".to_string()]), response, Instant::now());
    let client = &*CLIENT;
    let api = &client.api;
    let url = api.url("asset", &[("page_no", "1".into())]).expect("a valid path");
    let archived = &client.settings.archived_status_ids;
    for key in ["assets", "clients", "users", "tickets"] {
        let at = PageAt { url: &url, number: 1, rows_so_far: 0 };
        let _ = api.page_answer(&client.pager(key), at, response, key, |row| {
            let _ = parse::client(row);
            let _ = parse::asset(row, archived);
            let _ = parse::user(row, Some(1));
            let _ = parse::ticket(row);
            Ok(())
        });
    }
    let _ = api.read_answer(response, "asset 1");
    let saved = saved_rows(api.write_answer(response, "asset 1").ok().flatten());
    let _ = by_id(saved);
}
