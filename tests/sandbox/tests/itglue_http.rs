//! The simulator behaves as `docs/vendors/itglue.md` says IT Glue does, and takes the
//! unfavourable reading of every point listed there as unconfirmed.

use std::time::{Duration, Instant};

use offramp_sandbox::{ITGLUE_API_KEY, Sandbox, SandboxConfig};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const MEDIA_TYPE: &str = "application/vnd.api+json";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// One request with the right key; `body` goes out with `content_type`.
async fn send(
    sb: &Sandbox,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<(&str, &Value)>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.itglue_url()))
        .header("x-api-key", ITGLUE_API_KEY)
        .query(query);
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body.to_string());
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, headers, body }
}

async fn get(sb: &Sandbox, path: &str, query: &[(&str, &str)]) -> Answer {
    send(sb, Method::GET, path, query, None).await
}

async fn delete(sb: &Sandbox, query: &[(&str, &str)], body: &Value) -> Answer {
    send(sb, Method::DELETE, "/organizations", query, Some((MEDIA_TYPE, body))).await
}

async fn post_export(sb: &Sandbox, attributes: Value) -> Answer {
    let body = json!({"data": {"type": "exports", "attributes": attributes}});
    send(sb, Method::POST, "/exports", &[], Some((MEDIA_TYPE, &body))).await
}

fn deletion(ids: &[Value]) -> Value {
    json!({"data": ids.iter().map(|id| json!({"type": "organizations", "attributes": {"id": id}})).collect::<Vec<_>>()})
}

/// `data[].id` as numbers (they are strings on the wire; fails otherwise).
fn ids(document: &Value) -> Vec<i64> {
    document["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array in {document}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_else(|| panic!("id is not a string in {r}")).parse().unwrap())
        .collect()
}

fn error_status(document: &Value) -> &str {
    document["errors"][0]["status"].as_str().unwrap_or_else(|| panic!("not a JSON:API error: {document}"))
}

fn total(document: &Value) -> u64 {
    document["meta"]["total-count"].as_u64().unwrap_or_else(|| panic!("no total-count in {document}"))
}

/// Polls an export until it leaves pending/processing; returns the distinct statuses seen,
/// in order, and the final record.
async fn await_export(sb: &Sandbox, id: &str) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let export = get(sb, &format!("/exports/{id}"), &[]).await;
        assert_eq!(export.status, 200, "{}", export.body);
        let status = export.body["data"]["attributes"]["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status != "pending" && status != "processing" {
            return (seen, export.body["data"].clone());
        }
        assert!(Instant::now() < deadline, "export {id} never finished: {seen:?}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn a_missing_key_is_401_a_wrong_one_403_both_as_json_api_errors() {
    let sb = sandbox().await;
    let url = format!("{}/organizations", sb.itglue_url());
    let none = answer(reqwest::get(&url).await.unwrap()).await;
    assert_eq!(none.status, 401);
    assert_eq!(error_status(&none.body), "401");
    assert_eq!(none.headers["content-type"], MEDIA_TYPE);

    let wrong = reqwest::Client::new().get(&url).header("x-api-key", "ITG.not-the-key").send().await.unwrap();
    let wrong = answer(wrong).await;
    assert_eq!(wrong.status, 403, "the docs name 403 for a wrong key");
    assert_eq!(wrong.body["errors"][0]["title"], "Forbidden");

    let right = get(&sb, "/organizations", &[]).await;
    assert_eq!(right.status, 200);
    assert_eq!(right.headers["content-type"], MEDIA_TYPE);
    assert_eq!(ids(&right.body), [9001, 9002, 9003, 9004, 9005, 9006, 9007]);
    assert_eq!(sb.stats().count("GET", "/itglue/organizations"), 1, "refused requests reach no route");

    let unknown = get(&sb, "/documents", &[]).await;
    assert_eq!((unknown.status, error_status(&unknown.body)), (404, "404"), "top-level documents do not exist");
    let wrong_case = get(&sb, "/Organizations", &[]).await;
    assert_eq!(wrong_case.status, 404, "paths are case-sensitive");
}

#[tokio::test]
async fn an_organization_by_id_has_a_string_id_and_a_string_psa_id() {
    let sb = sandbox().await;
    let contoso = get(&sb, "/organizations/9001", &[]).await;
    assert_eq!(contoso.status, 200);
    let data = &contoso.body["data"];
    assert_eq!(data["id"], "9001");
    assert_eq!(data["type"], "organizations");
    let attributes = &data["attributes"];
    assert_eq!(attributes["name"], "Contoso Dental");
    assert_eq!(attributes["psa-id"], "250", "a string, not a number");
    assert_eq!(attributes["psa-integration-type"], "manage");
    assert_eq!(attributes["organization-status-name"], "Active");
    assert_eq!(attributes["organization-type-name"], "Customer");
    assert_eq!((attributes["parent-id"].clone(), attributes["ancestor-ids"].clone()), (Value::Null, json!([])));
    assert!(chrono::DateTime::parse_from_rfc3339(attributes["created-at"].as_str().unwrap()).is_ok());
    let notes = attributes["quick-notes"].as_str().unwrap();
    assert!(notes.chars().count() > 250, "full quick notes on the single resource");

    let listed = get(&sb, "/organizations", &[("filter[id]", "9001")]).await;
    assert_eq!(listed.body["data"][0]["attributes"]["quick-notes"].as_str().unwrap().chars().count(), 250);

    let northwind = get(&sb, "/organizations/9006", &[]).await;
    assert_eq!(northwind.body["data"]["attributes"]["psa-id"], Value::Null);
    assert_eq!(northwind.body["data"]["attributes"]["organization-status-name"], "Inactive");
    for missing in ["424242", "abc"] {
        let answer = get(&sb, &format!("/organizations/{missing}"), &[]).await;
        assert_eq!((answer.status, error_status(&answer.body)), (404, "404"), "{missing}");
    }
    assert_eq!(sb.stats().count("GET", "/itglue/organizations/{id}"), 4);
}

#[tokio::test]
async fn the_name_filter_is_a_case_sensitive_substring_match() {
    let sb = sandbox().await;
    let contoso = get(&sb, "/organizations", &[("filter[name]", "Contoso Dental")]).await;
    assert_eq!(ids(&contoso.body), [9001, 9007], "the lab matches too: not an exact match");
    let lower = get(&sb, "/organizations", &[("filter[name]", "contoso")]).await;
    assert_eq!((ids(&lower.body), total(&lower.body)), (vec![], 0), "case-sensitive");
    let litware = get(&sb, "/organizations", &[("filter[name]", "Litware Inc")]).await;
    assert_eq!(ids(&litware.body), [9003], "LITWARE INC differs in case");

    // Both spellings of filter names; other organization filters.
    let by_psa = get(&sb, "/organizations", &[("filter[psa-id]", "250")]).await;
    assert_eq!(ids(&by_psa.body), [9001]);
    let by_psa = get(&sb, "/organizations", &[("filter[psa_id]", "410,411")]).await;
    assert_eq!(ids(&by_psa.body), [9003, 9004], "commas separate alternatives");
    let inactive = get(&sb, "/organizations", &[("filter[organization_status_id]", "2")]).await;
    assert_eq!(ids(&inactive.body), [9006]);

    let by_name = get(&sb, "/organizations", &[("sort", "name")]).await;
    assert_eq!(ids(&by_name.body)[..2], [9002, 9001], "Adatum, then Contoso Dental");
    let descending = get(&sb, "/organizations", &[("sort", "-id")]).await;
    assert_eq!(ids(&descending.body)[0], 9007);
    let bad_sort = get(&sb, "/organizations", &[("sort", "colour")]).await;
    assert_eq!(bad_sort.status, 400);
}

#[tokio::test]
async fn pages_of_up_to_1000_with_meta_and_absolute_links() {
    let sb = sandbox().await;
    let added = sb.itglue().add_organizations(1200, "Paging Org");
    assert_eq!((added.len(), added[0], added[1199]), (1200, 20001, 21200));

    let first = get(&sb, "/organizations", &[("page[size]", "1000")]).await;
    let meta = &first.body["meta"];
    assert_eq!(ids(&first.body).len(), 1000);
    assert_eq!((meta["total-count"].clone(), meta["total-pages"].clone()), (json!(1207), json!(2)));
    assert_eq!((meta["current-page"].clone(), meta["next-page"].clone()), (json!(1), json!(2)));
    assert_eq!(meta["prev-page"], Value::Null);
    assert!(first.body["links"].get("prev").is_none());
    let next = first.body["links"]["next"].as_str().unwrap();
    assert!(next.starts_with(&sb.itglue_url()), "absolute: {next}");

    // Following links.next as given reaches the last page.
    let second = reqwest::Client::new().get(next).header("x-api-key", ITGLUE_API_KEY).send().await.unwrap();
    let second = answer(second).await;
    assert_eq!(second.status, 200);
    assert_eq!(ids(&second.body).len(), 207);
    assert_eq!(second.body["meta"]["next-page"], Value::Null, "last page");
    assert_eq!(second.body["meta"]["prev-page"], 1);
    assert!(second.body["links"].get("next").is_none());
    let mut all = ids(&first.body);
    all.extend(ids(&second.body));
    let mut expected: Vec<i64> = (9001..=9007).collect();
    expected.extend(&added);
    assert_eq!(all, expected, "every organization once, by id");

    let default = get(&sb, "/organizations", &[]).await;
    assert_eq!((ids(&default.body).len(), default.body["meta"]["total-pages"].clone()), (50, json!(25)));
    let clamped = get(&sb, "/organizations", &[("page[size]", "5000")]).await;
    assert_eq!(ids(&clamped.body).len(), 1000, "clamped to 1000");
    let filtered = get(&sb, "/organizations", &[("filter[name]", "Paging Org"), ("page[size]", "1")]).await;
    assert_eq!((total(&filtered.body), filtered.body["meta"]["total-pages"].clone()), (1200, json!(1200)));
    let last = filtered.body["links"]["last"].as_str().unwrap();
    assert!(last.contains("page%5Bnumber%5D=1200") && last.contains("filter%5Bname%5D=Paging"), "{last}");
}

#[tokio::test]
async fn archived_configurations_and_passwords_are_listed_only_when_asked_for() {
    let sb = sandbox().await;
    let unfiltered = get(&sb, "/configurations", &[("filter[organization_id]", "9001")]).await;
    assert_eq!(ids(&unfiltered.body), [90010101, 90010102, 90010103], "no archived one");
    let record = &unfiltered.body["data"][0]["attributes"];
    assert_eq!((record["organization-id"].clone(), record["archived"].clone()), (json!(9001), json!(false)));
    let archived =
        get(&sb, "/configurations", &[("filter[organization-id]", "9001"), ("filter[archived]", "true")]).await;
    assert_eq!(ids(&archived.body), [90010104]);
    assert_eq!(archived.body["data"][0]["attributes"]["archived"], true);
    let live = get(&sb, "/configurations", &[("filter[organization_id]", "9001"), ("filter[archived]", "false")]).await;
    assert_eq!(total(&live.body), 3);
    let everyone = get(&sb, "/configurations", &[]).await;
    assert_eq!(total(&everyone.body), 6, "9001's three, 9003's one, 9005's two");
    let bad = get(&sb, "/configurations", &[("filter[archived]", "maybe")]).await;
    assert_eq!(bad.status, 400);

    let passwords = get(&sb, "/passwords", &[("filter[organization_id]", "9001")]).await;
    assert_eq!(total(&passwords.body), 2);
    assert!(passwords.body["data"][0]["attributes"].get("password").is_none(), "no password values in lists");
    let old = get(&sb, "/passwords", &[("filter[organization_id]", "9001"), ("filter[archived]", "true")]).await;
    assert_eq!(total(&old.body), 1);
    let contacts = get(&sb, "/contacts", &[("filter[organization_id]", "9001"), ("page[size]", "1")]).await;
    assert_eq!((total(&contacts.body), ids(&contacts.body).len()), (3, 1));
    let locations = get(&sb, "/locations", &[("filter[organization_id]", "9007")]).await;
    assert_eq!(ids(&locations.body), [90070401]);
    let none = get(&sb, "/configurations", &[("filter[organization_id]", "9002")]).await;
    assert_eq!((total(&none.body), none.body["meta"]["total-pages"].clone()), (0, json!(0)));
}

#[tokio::test]
async fn flexible_assets_need_a_type_filter() {
    let sb = sandbox().await;
    let untyped = get(&sb, "/flexible_assets", &[("filter[organization_id]", "9001")]).await;
    assert_eq!((untyped.status, error_status(&untyped.body)), (400, "400"));
    assert!(untyped.body["errors"][0]["detail"].as_str().unwrap().contains("flexible_asset_type_id"));

    let types = get(&sb, "/flexible_asset_types", &[]).await;
    let names: Vec<&str> =
        types.body["data"].as_array().unwrap().iter().map(|t| t["attributes"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Applications", "Email", "Backup"]);
    let mut counts = Vec::new();
    for type_id in ids(&types.body) {
        let type_id = type_id.to_string();
        let query = [("filter[flexible-asset-type-id]", type_id.as_str()), ("filter[organization_id]", "9001")];
        let assets = get(&sb, "/flexible_assets", &query).await;
        assert_eq!(assets.status, 200, "{}", assets.body);
        counts.push(total(&assets.body));
    }
    assert_eq!(counts, [2, 1, 0]);
    let other_org =
        get(&sb, "/flexible_assets", &[("filter[flexible_asset_type_id]", "1"), ("filter[organization_id]", "9005")])
            .await;
    assert_eq!(total(&other_org.body), 0);
    assert_eq!(sb.stats().count("GET", "/itglue/flexible_assets"), 5);
}

#[tokio::test]
async fn the_nested_documents_route_counts_refuses_filters_and_can_disappear() {
    let sb = sandbox().await;
    let route = "/itglue/organizations/{id}/relationships/documents";
    let documents = get(&sb, "/organizations/9001/relationships/documents", &[]).await;
    assert_eq!(documents.status, 200);
    assert_eq!(ids(&documents.body), [90010501, 90010502]);
    assert_eq!(documents.body["data"][0]["type"], "documents");
    let empty = get(&sb, "/organizations/9002/relationships/documents", &[]).await;
    assert_eq!(total(&empty.body), 0);

    let filtered = get(&sb, "/organizations/9001/relationships/documents", &[("filter[archived]", "false")]).await;
    assert_eq!(filtered.status, 400);
    assert!(filtered.body["errors"][0]["detail"].as_str().unwrap().contains("nested relationship routes"));
    let unknown = get(&sb, "/organizations/424242/relationships/documents", &[]).await;
    assert_eq!(unknown.status, 404);
    let configurations = get(&sb, "/organizations/9001/relationships/configurations", &[]).await;
    assert_eq!(total(&configurations.body), 3, "archived hidden here too, and not askable");

    sb.itglue().set_documents_route_available(false);
    let gone = get(&sb, "/organizations/9001/relationships/documents", &[]).await;
    assert_eq!((gone.status, error_status(&gone.body)), (404, "404"));
    sb.itglue().set_documents_route_available(true);
    assert_eq!(get(&sb, "/organizations/9001/relationships/documents", &[]).await.status, 200);
    assert_eq!(sb.stats().count("GET", route), 6);
}

#[tokio::test]
async fn delete_is_validated_all_or_nothing_and_asynchronous() {
    let sb = sandbox().await;
    sb.set_itglue_deletion_delay(Duration::from_millis(250));
    let itglue = sb.itglue();
    let adatum = deletion(&[json!(9002)]);

    let as_json = send(&sb, Method::DELETE, "/organizations", &[], Some(("application/json", &adatum))).await;
    assert_eq!((as_json.status, error_status(&as_json.body)), (415, "415"));
    let unknown = delete(&sb, &[], &deletion(&[json!(9002), json!(424242)])).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body["errors"][0]["detail"].as_str().unwrap().contains("424242"));
    let with_filter = delete(&sb, &[("filter[id]", "9002")], &adatum).await;
    assert_eq!(with_filter.status, 400);
    assert!(with_filter.body["errors"][0]["detail"].as_str().unwrap().contains("filter"));
    let no_body = send(&sb, Method::DELETE, "/organizations", &[], None).await;
    assert_eq!(no_body.status, 400);
    for malformed in [json!({"data": []}), json!({"data": {"type": "organizations", "attributes": {"id": 9002}}})] {
        assert_eq!(delete(&sb, &[], &malformed).await.status, 400, "{malformed}");
    }
    let no_id = json!({"data": [{"type": "organizations", "attributes": {"name": "Adatum Travel"}}]});
    assert_eq!(delete(&sb, &[], &no_id).await.status, 400);
    itglue.fail_deletion(9004, "Organization is being synchronized and cannot be deleted");
    let refused = delete(&sb, &[], &deletion(&[json!(9002), json!(9004)])).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body["errors"][0]["detail"].as_str().unwrap().contains("synchronized"));
    assert_eq!(itglue.deletions_requested(), 0, "nothing marked by a refused request");
    assert!(!itglue.marked_for_deletion(9002));

    // Accepted: ids as a string and as a number; answered with what will be deleted.
    let accepted = delete(&sb, &[], &deletion(&[json!("9002"), json!(9001)])).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(ids(&accepted.body), [9002, 9001]);
    assert_eq!(accepted.body["data"][1]["attributes"]["name"], "Contoso Dental");
    assert_eq!(itglue.deletions_requested(), 2);
    assert!(itglue.marked_for_deletion(9001) && itglue.organization_exists(9001));
    assert_eq!(get(&sb, "/organizations/9001", &[]).await.status, 200, "still there: deletion is asynchronous");
    assert_eq!(delete(&sb, &[], &deletion(&[json!(9001)])).await.status, 200, "asking again is harmless");
    assert_eq!(itglue.deletions_requested(), 2, "counted once per organization");

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(get(&sb, "/organizations/9001", &[]).await.status, 404);
    assert!(!itglue.organization_exists(9001) && !itglue.organization_exists(9002));
    assert!(itglue.marked_for_deletion(9001), "the mark outlives the removal");
    let listed = get(&sb, "/organizations", &[]).await;
    assert_eq!(ids(&listed.body), [9003, 9004, 9005, 9006, 9007]);
    let configurations = get(&sb, "/configurations", &[("filter[organization_id]", "9001")]).await;
    assert_eq!(total(&configurations.body), 0, "dependents went with it");
    let archived = get(&sb, "/configurations", &[("filter[archived]", "true")]).await;
    assert_eq!(total(&archived.body), 0);
    assert_eq!(total(&get(&sb, "/configurations", &[]).await.body), 3);
    let contacts = get(&sb, "/contacts", &[]).await;
    assert_eq!(total(&contacts.body), 0);
    assert_eq!(get(&sb, "/organizations/9001/relationships/documents", &[]).await.status, 404);
    assert_eq!(delete(&sb, &[], &deletion(&[json!(9001)])).await.status, 404, "already removed");
    assert_eq!(itglue.deletions_requested(), 2);
    assert_eq!(sb.stats().count("DELETE", "/itglue/organizations"), 11);
}

#[tokio::test]
async fn exports_go_pending_processing_done_and_can_fail_or_be_refused() {
    let sb = sandbox().await;
    let itglue = sb.itglue();
    itglue.set_export_delay(Duration::from_millis(1000));
    let created = post_export(&sb, json!({"organization-id": 9001, "include-logs": false})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let data = &created.body["data"];
    assert_eq!(data["type"], "exports");
    let attributes = &data["attributes"];
    assert_eq!((attributes["status"].clone(), attributes["download-url"].clone()), (json!("pending"), Value::Null));
    assert_eq!(
        (attributes["organization-id"].clone(), attributes["organization-name"].clone()),
        (json!(9001), json!("Contoso Dental"))
    );
    let id = data["id"].as_str().expect("a string id").to_string();
    let (seen, done) = await_export(&sb, &id).await;
    assert_eq!(seen, ["pending", "processing", "done"]);
    let link = done["attributes"]["download-url"].as_str().expect("a link when done").to_string();
    let token = offramp_sandbox::export_link_token(id.parse().unwrap());
    assert_eq!(link, format!("{}/_exports/{id}.zip?token={token}", sb.itglue_url()));
    // The link alone downloads the export (no API key); a wrong token does not.
    let client = reqwest::Client::new();
    let bytes = client.get(&link).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), itglue.export_content(id.parse().unwrap()).as_slice());
    assert!(bytes.starts_with(b"PK\x03\x04"));
    let forged = link.replace(&token, "sandbox-export-token-guess");
    assert_eq!(client.get(&forged).send().await.unwrap().status(), 403);
    assert_eq!((itglue.export_downloads(), itglue.export_downloads_with_key()), (1, 0));
    assert_eq!(itglue.export_requests(), 1);
    assert_eq!(sb.stats().count("POST", "/itglue/exports"), 1);
    assert!(sb.stats().count("GET", "/itglue/exports/{id}") >= 3);

    itglue.set_export_delay(Duration::from_millis(100));
    itglue.fail_exports(true);
    let failing = post_export(&sb, json!({"organization_id": "9002"})).await;
    assert_eq!(failing.status, 201, "snake_case and a string id are accepted");
    let (_, failed) = await_export(&sb, failing.body["data"]["id"].as_str().unwrap()).await;
    assert_eq!(failed["attributes"]["status"], "failed");
    assert_eq!(failed["attributes"]["download-url"], Value::Null);
    itglue.fail_exports(false);

    itglue.refuse_exports(true);
    let refused = post_export(&sb, json!({"organization-id": 9002})).await;
    assert_eq!((refused.status, error_status(&refused.body)), (403, "403"));
    itglue.refuse_exports(false);
    let unknown = post_export(&sb, json!({"organization-id": 424242})).await;
    assert_eq!(unknown.status, 422);
    let body = json!({"data": {"type": "exports", "attributes": {"organization-id": 9002}}});
    let as_json = send(&sb, Method::POST, "/exports", &[], Some(("application/json", &body))).await;
    assert_eq!(as_json.status, 415);
    assert_eq!(get(&sb, "/exports/999", &[]).await.status, 404);
    assert_eq!(itglue.export_requests(), 2, "refused and invalid requests are not exports");

    // Without an organization id IT Glue exports the whole account.
    let account = post_export(&sb, json!({"include-logs": false})).await;
    assert_eq!(account.status, 201);
    assert_eq!(account.body["data"]["attributes"]["organization-id"], Value::Null);
    let records = itglue.exports();
    assert_eq!(records.len(), 3);
    assert_eq!(records.iter().filter(|e| e["attributes"]["organization-id"].is_null()).count(), 1);
    assert_eq!(records[0]["attributes"]["status"], "done");
}

#[tokio::test]
async fn the_rolling_window_answers_429_without_retry_after() {
    let sb = sandbox().await;
    sb.itglue().set_rate_limit(Some(3));
    let url = format!("{}/organizations/9002", sb.itglue_url());
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 401, "counted although unauthenticated");
    assert_eq!(get(&sb, "/organizations/9002", &[]).await.status, 200);
    assert_eq!(get(&sb, "/organizations/9002", &[]).await.status, 200);
    let throttled = get(&sb, "/organizations/9002", &[]).await;
    assert_eq!((throttled.status, error_status(&throttled.body)), (429, "429"));
    assert!(throttled.headers.get("retry-after").is_none());
    assert_eq!(throttled.headers["content-type"], MEDIA_TYPE);
    assert_eq!(sb.stats().throttled(), 1);
    sb.itglue().set_rate_limit(None);
    assert_eq!(get(&sb, "/organizations/9002", &[]).await.status, 200);

    // The admin API sets the same window.
    let admin = format!("{}/_sandbox/settings", sb.base_url());
    let client = reqwest::Client::new();
    client.post(&admin).body(json!({"itglue_rate_limit": 0}).to_string()).send().await.unwrap();
    assert_eq!(get(&sb, "/organizations/9002", &[]).await.status, 429);
    client.post(&admin).body(json!({"itglue_rate_limit": null}).to_string()).send().await.unwrap();
    assert_eq!(get(&sb, "/organizations/9002", &[]).await.status, 200);
}

#[tokio::test]
async fn shared_faults_answer_in_the_json_api_shape() {
    let sb = sandbox().await;
    sb.fail_next(1, 503);
    let failed = get(&sb, "/organizations", &[]).await;
    assert_eq!((failed.status, error_status(&failed.body)), (503, "503"));
    assert_eq!(failed.headers["content-type"], MEDIA_TYPE);
    assert_eq!(get(&sb, "/organizations", &[]).await.status, 200);
}
