//! The simulator behaves as `docs/vendors/halopsa.md` says HaloPSA does.

use std::time::Duration;

use offramp_sandbox::{HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT, Sandbox, SandboxConfig};
use serde_json::{Value, json};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 1_200, ..SandboxConfig::default() }).await.unwrap()
}

async fn token_response(sb: &Sandbox, tenant: Option<&str>, form: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(format!("{}/auth/token", sb.halo_url()));
    if let Some(tenant) = tenant {
        request = request.query(&[("tenant", tenant)]);
    }
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    request.header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
}

const GOOD_FORM: [(&str, &str); 4] = [
    ("grant_type", "client_credentials"),
    ("client_id", HALO_CLIENT_ID),
    ("client_secret", HALO_CLIENT_SECRET),
    ("scope", "all"),
];

async fn token(sb: &Sandbox) -> String {
    let response = token_response(sb, Some(HALO_TENANT), &GOOD_FORM).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn get(sb: &Sandbox, token: &str, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/api{path}", sb.halo_url()))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn post_assets(sb: &Sandbox, token: &str, body: &str) -> (u16, Value) {
    post(sb, token, "/Asset", body).await
}

async fn post(sb: &Sandbox, token: &str, path: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api{path}", sb.halo_url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn ids(list: &Value, key: &str) -> Vec<i64> {
    list[key].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn authinfo_and_the_client_credentials_token_flow() {
    let sb = sandbox().await;
    let info: Value = reqwest::get(format!("{}/api/authinfo", sb.halo_url())).await.unwrap().json().await.unwrap();
    assert_eq!(info["auth_url"], format!("{}/auth", sb.halo_url()));
    assert_eq!(info["tenant_id"], HALO_TENANT);

    let ok: Value = token_response(&sb, Some(HALO_TENANT), &GOOD_FORM).await.json().await.unwrap();
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"], 3600);
    assert_eq!(ok["scope"], "all");
    assert!(ok["access_token"].as_str().unwrap().len() >= 32);

    let bad_secret = [GOOD_FORM[0], GOOD_FORM[1], ("client_secret", "nope"), GOOD_FORM[3]];
    let response = token_response(&sb, Some(HALO_TENANT), &bad_secret).await;
    assert_eq!(response.status(), 401);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // The refusal quotes the request it refused, the secret form-encoded in it.
    assert!(body["error_description"].as_str().unwrap().contains("client_secret=nope"), "{body}");
    for tenant in [None, Some("someoneelse")] {
        let response = token_response(&sb, tenant, &GOOD_FORM).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"error": "invalid_request", "error_description": "unknown tenant"}));
    }
    let password = [("grant_type", "password"), GOOD_FORM[1], GOOD_FORM[2], GOOD_FORM[3]];
    let response = token_response(&sb, Some(HALO_TENANT), &password).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    assert_eq!(sb.halo_tokens_issued(), 1);
    assert_eq!(sb.stats().count("POST", "/halo/auth/token"), 5);
}

#[tokio::test]
async fn api_calls_need_a_live_bearer_token() {
    let sb = sandbox().await;
    let url = format!("{}/api/client/250", sb.halo_url());
    let none = reqwest::get(&url).await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.text().await.unwrap().starts_with("Unauthorized"), "plain text, not JSON");
    let refused = reqwest::Client::new().get(&url).bearer_auth("made-up-token").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("'made-up-token'"), "the refusal echoes the token");

    let live = token(&sb).await;
    let (status, client) = get(&sb, &live, "/client/250", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(client["name"], "Contoso Dental");

    sb.revoke_halo_tokens();
    let (status, _) = get(&sb, &live, "/client/250", &[]).await;
    assert_eq!(status, 401, "revoked");

    sb.set_halo_token_ttl(Duration::from_millis(200));
    let short = token(&sb).await;
    assert_eq!(get(&sb, &short, "/client/250", &[]).await.0, 200);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(get(&sb, &short, "/client/250", &[]).await.0, 401, "expired");
    assert_eq!(sb.halo_tokens_issued(), 2);
}

#[tokio::test]
async fn clients_by_id_and_search_with_includeinactive_semantics() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let (_, contoso) = get(&sb, &t, "/Client/250", &[]).await;
    assert_eq!(contoso["inactive"], true);
    assert_eq!(contoso["toplevel_id"], 1);
    assert_eq!(contoso["main_site_name"], "Main");
    let (_, northwind) = get(&sb, &t, "/client/300", &[]).await;
    assert_eq!(northwind["inactive"], false, "the large client is active on Halo");
    let (status, missing) = get(&sb, &t, "/client/999", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(missing, json!({"ClassName": "System.Exception", "Message": "Client not found"}));

    let (_, default) = get(&sb, &t, "/client", &[("search", "LITWARE")]).await;
    assert_eq!(default["record_count"], 0, "offboarded (inactive) clients are hidden by default");
    let (_, both) = get(&sb, &t, "/client", &[("search", "litware"), ("includeinactive", "true")]).await;
    assert_eq!(ids(&both, "clients"), [410, 411]);
    let (_, inactive_only) = get(&sb, &t, "/client", &[("includeinactive", "true"), ("includeactive", "false")]).await;
    assert_eq!(ids(&inactive_only, "clients"), [250, 260, 270, 410, 411]);
    let (_, active) = get(&sb, &t, "/client", &[]).await;
    assert_eq!(ids(&active, "clients"), [100, 300, 600], "600: the Microsoft 365 tenant's people");
}

#[tokio::test]
async fn assets_page_with_record_count_and_hide_inactive_by_default() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let mut seen = Vec::new();
    for page in 1..=3 {
        let page = page.to_string();
        let (_, body) = get(
            &sb,
            &t,
            "/asset",
            &[("client_id", "300"), ("pageinate", "true"), ("page_size", "500"), ("page_no", &page)],
        )
        .await;
        assert_eq!(body["record_count"], 1200);
        assert_eq!(body["page_size"], 500);
        seen.extend(ids(&body, "assets"));
    }
    assert_eq!(seen, (300001..=301200).collect::<Vec<_>>());
    let (_, clamped) =
        get(&sb, &t, "/asset", &[("client_id", "300"), ("pageinate", "true"), ("page_size", "5000")]).await;
    assert_eq!(clamped["page_size"], 500);
    assert_eq!(clamped["assets"].as_array().unwrap().len(), 500);
    let (_, unpaged) = get(&sb, &t, "/asset", &[("client_id", "300"), ("page_size", "10")]).await;
    assert_eq!(unpaged["assets"].as_array().unwrap().len(), 1200, "no pageinate, no paging");

    let (_, default) = get(&sb, &t, "/asset", &[("client_id", "250")]).await;
    assert_eq!(default["record_count"], 9, "8 Active + On Order; inactive hidden unless asked for");
    let (_, all) = get(&sb, &t, "/asset", &[("client_id", "250"), ("includeinactive", "true")]).await;
    assert_eq!(all["record_count"], 12);
    let (_, inactive) =
        get(&sb, &t, "/asset", &[("client_id", "250"), ("includeinactive", "true"), ("includeactive", "false")]).await;
    assert_eq!(ids(&inactive, "assets"), [25010, 25011, 25012]);
    let (_, disposed) = get(&sb, &t, "/asset/25012", &[]).await;
    assert_eq!(disposed["inactive"], true);
    assert_eq!(disposed["status_id"], 4);
    assert_eq!(disposed["inventory_number"], "Dental Chair Tablet");
    let (_, on_order) = get(&sb, &t, "/asset/25009", &[]).await;
    assert_eq!((on_order["inactive"].clone(), on_order["status_id"].clone()), (json!(false), json!(3)));
    assert_eq!(get(&sb, &t, "/asset/99999", &[]).await.0, 404);
}

#[tokio::test]
async fn asset_batches_are_atomic_and_need_integer_ids() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let halo = sb.psa("halo");

    let (status, body) =
        post_assets(&sb, &t, r#"[{"id": 25001, "inactive": true}, {"id": 99999, "inactive": true}]"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["resultCode"], 1);
    assert!(body["errorMessage"].as_str().unwrap().contains("99999"), "{body}");
    assert_eq!(halo.configuration_is_active(25001), Some(true), "nothing changed");

    halo.fail_configuration_update(25003, "Asset is locked");
    let (status, body) =
        post_assets(&sb, &t, r#"[{"id": 25002, "inactive": true}, {"id": 25003, "inactive": true}]"#).await;
    assert_eq!((status, body["errorMessage"].clone()), (400, json!("Asset is locked")));
    assert_eq!(halo.configuration_is_active(25002), Some(true), "nothing changed");
    halo.clear_configuration_failures();

    let (status, _) = post_assets(&sb, &t, r#"[{"id": 95.0, "inactive": true}]"#).await;
    assert_eq!(status, 400, "95.0 is not an integer id");
    let (status, _) = post_assets(&sb, &t, r#"{"id": 25001, "inactive": true}"#).await;
    assert_eq!(status, 400, "the body must be an array");

    let (status, body) =
        post_assets(&sb, &t, r#"[{"id": 25001, "inactive": true}, {"id": 25002, "inactive": true}]"#).await;
    assert_eq!(status, 201);
    assert_eq!(ids(&json!({"a": body}), "a"), [25001, 25002]);
    assert_eq!(body[0]["inactive"], true);
    assert_eq!(body[0]["inventory_number"], "Firewall - HQ", "other fields unchanged");
    assert_eq!(halo.configuration_is_active(25001), Some(false));
    assert_eq!(halo.update_count(25001), 2);
    assert_eq!(halo.update_count(25003), 1);
    // Elements that reached an existing asset: 1 + 2 + 2.
    assert_eq!(sb.stats().patches(), 5);
    assert_eq!(sb.stats().count("POST", "/halo/api/asset"), 5);
}

#[tokio::test]
async fn the_rolling_window_answers_429_without_retry_after() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, halo_rate_limit: Some(5), ..Default::default() })
        .await
        .unwrap();
    let t = token(&sb).await; // the token request counts
    for _ in 0..4 {
        assert_eq!(get(&sb, &t, "/client/250", &[]).await.0, 200);
    }
    let response =
        reqwest::Client::new().get(format!("{}/api/client/250", sb.halo_url())).bearer_auth(&t).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(response.text().await.unwrap(), "Rate Limit Reached - 5 Requests per rolling 5 minute window");
    assert_eq!(sb.stats().throttled(), 1);
    sb.set_halo_rate_limit(None);
    assert_eq!(get(&sb, &t, "/client/250", &[]).await.0, 200);
}

#[tokio::test]
async fn client_contracts_say_whether_they_are_current() {
    let sb = sandbox().await;
    let token = token(&sb).await;
    let today = format!("{}T00:00:00", sb.today());
    let (status, body) = get(&sb, &token, "/ClientContract", &[("client_id", "411")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record_count"], 1);
    assert_eq!(body["contracts"][0]["id"], 4111);
    assert_eq!(body["contracts"][0]["active"], json!(true));
    assert!(body["contracts"][0]["end_date"].as_str().unwrap() > today.as_str());

    let (_, body) = get(&sb, &token, "/ClientContract", &[("client_id", "250")]).await;
    let contracts = body["contracts"].as_array().unwrap();
    assert_eq!(contracts.len(), 2);
    for contract in contracts {
        assert_eq!(contract["active"], json!(false), "{contract}");
        assert!(contract["end_date"].as_str().unwrap() < today.as_str(), "{contract}");
        assert_eq!(contract["client_name"], "Contoso Dental");
    }
    let (_, body) = get(&sb, &token, "/ClientContract/2602", &[]).await;
    assert_eq!((body["end_date"].clone(), body["active"].clone()), (Value::Null, json!(false)), "{body}");
    let pages = [("pageinate", "true"), ("page_size", "4"), ("page_no", "2")];
    let (_, body) = get(&sb, &token, "/ClientContract", &pages).await;
    assert_eq!((body["record_count"].clone(), body["contracts"].as_array().unwrap().len()), (json!(9), 4), "{body}");
    assert_eq!(sb.stats().count("GET", "/halo/api/ClientContract"), 3);
}

#[tokio::test]
async fn users_hide_inactive_by_default_and_page() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let (_, default) = get(&sb, &t, "/users", &[("client_id", "250")]).await;
    assert_eq!(ids(&default, "users"), [5001, 5002, 5003, 5004, 5005, 5007], "inactive 5006 hidden by default");
    let both = [("client_id", "250"), ("includeinactive", "true"), ("includeactive", "true")];
    let (_, all) = get(&sb, &t, "/users", &both).await;
    assert_eq!(all["record_count"], 7);
    let jane = &all["users"][0];
    assert_eq!(
        *jane,
        json!({"id": 5001, "name": "Jane Doe", "firstname": "Jane", "surname": "Doe",
            "emailaddress": "jane.doe@contosodental.example", "jobtitle": "CEO", "site_id": 2501, "site_name": "Main",
            "client_id": 250, "client_name": "Contoso Dental", "inactive": false, "isimportantcontact": false})
    );
    let (_, bob) = get(&sb, &t, "/Users/5002", &[]).await;
    assert_eq!(bob["isimportantcontact"], true, "managers are important, not primary");
    let (_, olga) = get(&sb, &t, "/users/5006", &[]).await;
    assert_eq!((olga["inactive"].clone(), olga["jobtitle"].clone()), (json!(true), json!("Dental Hygienist")));
    let (status, missing) = get(&sb, &t, "/users/424242", &[]).await;
    assert_eq!((status, missing["Message"].clone()), (404, json!("User not found")));
    let (_, found) = get(&sb, &t, "/users", &[("search", "BOB.WILSON@"), ("includeinactive", "true")]).await;
    assert_eq!(ids(&found, "users"), [5002]);

    let mut seen = Vec::new();
    for page in ["1", "2", "3"] {
        let query = [("client_id", "300"), ("pageinate", "true"), ("page_size", "100"), ("page_no", page)];
        let (_, body) = get(&sb, &t, "/users", &query).await;
        assert_eq!((body["record_count"].clone(), body["page_size"].clone()), (json!(250), json!(100)));
        seen.extend(ids(&body, "users"));
    }
    assert_eq!(seen, (300001..=300250).collect::<Vec<_>>());
    assert_eq!(sb.stats().count("GET", "/halo/api/users"), 6);
    assert_eq!(sb.stats().count("GET", "/halo/api/users/{id}"), 3);
}

#[tokio::test]
async fn user_updates_are_atomic_batches() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let halo = sb.psa("halo");

    let (status, body) =
        post(&sb, &t, "/users", r#"[{"id": 5002, "inactive": true}, {"id": 424242, "inactive": true}]"#).await;
    assert_eq!((status, body["resultCode"].clone()), (400, json!(1)));
    assert!(body["errorMessage"].as_str().unwrap().contains("424242"), "{body}");
    assert_eq!(halo.contact_is_active(5002), Some(true), "nothing changed");

    halo.fail_contact_update(5004, "User is the approver of an open quote");
    let (status, body) =
        post(&sb, &t, "/users", r#"[{"id": 5002, "inactive": true}, {"id": 5004, "inactive": true}]"#).await;
    assert_eq!((status, body["errorMessage"].clone()), (400, json!("User is the approver of an open quote")));
    assert_eq!(halo.contact_is_active(5002), Some(true), "nothing changed");
    halo.clear_contact_failures();

    for bad in [
        r#"[{"id": 5002.0, "inactive": true}]"#,
        r#"[{"id": 5002, "inactive": "true"}]"#,
        r#"[{"id": 5002, "client_id": 100}]"#,
        r#"[{"inactive": true}]"#,
        r#"{"id": 5002, "inactive": true}"#,
    ] {
        let (status, body) = post(&sb, &t, "/users", bad).await;
        assert_eq!((status, body["resultCode"].clone()), (400, json!(1)), "{bad}: {body}");
    }
    assert_eq!(halo.contact_is_active(5002), Some(true));

    let (status, body) = post(&sb, &t, "/users", r#"[{"id": 5002, "inactive": true}]"#).await;
    assert_eq!(status, 201);
    assert_eq!(
        (body[0]["inactive"].clone(), body[0]["emailaddress"].clone()),
        (json!(true), json!("bob.wilson@contosodental.example"))
    );
    assert_eq!(halo.contact_is_active(5002), Some(false));
    let (_, default) = get(&sb, &t, "/users", &[("client_id", "250")]).await;
    assert!(!ids(&default, "users").contains(&5002), "now hidden without includeinactive");
    // Attempts that reached 5002: the unknown-id batch, the failed batch, the two refused
    // values, the success (not the float id, nor the element without one).
    assert_eq!(halo.contact_update_count(5002), 5);
    assert_eq!(halo.contact_update_count(5004), 1);
    assert_eq!(sb.stats().count("POST", "/halo/api/users"), 8);
    assert_eq!(sb.stats().patches(), 0, "contacts are not configuration updates");
}

#[tokio::test]
async fn the_main_site_names_the_main_contact() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let (_, client) = get(&sb, &t, "/client/250", &[]).await;
    assert_eq!(client["main_site_id"], 2501);
    let (status, site) = get(&sb, &t, "/Site/2501", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        site,
        json!({"id": 2501, "name": "Main", "client_id": 250, "client_name": "Contoso Dental",
            "maincontact_id": 5001, "maincontact_name": "Jane Doe"})
    );
    let (_, empty) = get(&sb, &t, "/site/2601", &[]).await;
    assert_eq!((empty["maincontact_id"].clone(), empty["client_id"].clone()), (json!(0), json!(260)), "no contacts");
    let (status, missing) = get(&sb, &t, "/site/2502", &[]).await;
    assert_eq!((status, missing["Message"].clone()), (404, json!("Site not found")));
    assert_eq!(sb.stats().count("GET", "/halo/api/site/{id}"), 3);
}

#[tokio::test]
async fn tickets_filter_open_and_closed() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let (_, open) = get(&sb, &t, "/tickets", &[("client_id", "250"), ("open_only", "true")]).await;
    assert_eq!(ids(&open, "tickets"), [9001, 9002, 9003, 9005, 9010]);
    let (_, closed) = get(&sb, &t, "/tickets", &[("client_id", "250"), ("closed_only", "true")]).await;
    assert_eq!(ids(&closed, "tickets"), [9004]);
    assert_eq!(closed["tickets"][0]["status_id"], 9);
    let (_, all) = get(&sb, &t, "/tickets", &[("client_id", "250")]).await;
    assert_eq!(all["record_count"], 6);
    let (_, mine) = get(&sb, &t, "/tickets", &[("user_id", "5002"), ("open_only", "true")]).await;
    assert_eq!(ids(&mine, "tickets"), [9001]);
    let paged = [("client_id", "250"), ("pageinate", "true"), ("page_size", "4"), ("page_no", "2")];
    let (_, page) = get(&sb, &t, "/tickets", &paged).await;
    assert_eq!(ids(&page, "tickets"), [9005, 9010]);

    let (_, first) = get(&sb, &t, "/tickets/9001", &[]).await;
    for (field, value) in [
        ("summary", json!("Printer offline at reception")),
        ("client_id", json!(250)),
        ("site_id", json!(2501)),
        ("user_id", json!(5002)),
        ("agent_id", json!(11)),
        ("team", json!("Service Desk")),
        ("status_id", json!(1)),
    ] {
        assert_eq!(first[field], value, "{field}");
    }
    let (_, demo) = get(&sb, &t, "/tickets/9010", &[]).await;
    assert_eq!(demo["user_id"], 0, "no contact");
    assert_eq!(get(&sb, &t, "/tickets/424242", &[]).await.0, 404);
    let view = sb.psa("halo").ticket(9004).unwrap();
    assert!(view.closed);
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (Some(5002), Some(11), Some(1)));
}

#[tokio::test]
async fn ticket_upserts_validate_references_and_create() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    let halo = sb.psa("halo");

    let (status, saved) =
        post(&sb, &t, "/tickets", r#"[{"id": 9001, "user_id": 5007, "agent_id": 12, "team": "offboarding"}]"#).await;
    assert_eq!(status, 201, "{saved}");
    assert!(saved.is_object(), "one element: the saved ticket itself");
    assert_eq!(
        (saved["team"].clone(), saved["summary"].clone()),
        (json!("Offboarding"), json!("Printer offline at reception"))
    );
    let view = halo.ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (Some(5007), Some(12), Some(4)));

    // Clearing: user 0, agent 0, team "".
    let (status, _) = post(&sb, &t, "/tickets", r#"[{"id": 9001, "user_id": 0, "agent_id": 0, "team": ""}]"#).await;
    assert_eq!(status, 201);
    let view = halo.ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (None, None, None));

    for (bad, message) in [
        (r#"[{"id": 9002, "user_id": 7002}]"#, "User 7002 does not belong to client 250"),
        (r#"[{"id": 9002, "user_id": 424242}]"#, "User 424242 does not exist"),
        (r#"[{"id": 9002, "agent_id": 99}]"#, "Agent 99 does not exist"),
        (r#"[{"id": 9002, "team": "Nope"}]"#, "Team 'Nope' does not exist"),
        (r#"[{"id": 9002, "user_id": "5001"}]"#, "user_id must be an integer"),
        (r#"[{"id": 9002.0, "user_id": 5001}]"#, "ids must be integers"),
        (r#"[{"id": 424242, "user_id": 5001}]"#, "Ticket 424242 does not exist"),
        (r#"[{"id": 9002, "user_id": 5001}, {"id": 9003, "agent_id": 99}]"#, "Agent 99"),
        (r#"[{"client_id": 250, "summary": "x"}]"#, "site_id is required"),
        (r#"[{"client_id": 250, "site_id": 1001, "summary": "x"}]"#, "Site 1001 does not belong to client 250"),
        (r#"[{"client_id": 250, "site_id": 2501, "summary": "x", "tickettype_id": 42}]"#, "Ticket type 42"),
    ] {
        let (status, body) = post(&sb, &t, "/tickets", bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["errorMessage"].as_str().unwrap().contains(message), "{bad}: {body}");
    }
    assert_eq!(halo.ticket(9002).unwrap().contact_id, Some(5004), "atomic: nothing changed");
    assert_eq!(halo.ticket_ids_of(250).len(), 6, "nothing created");

    // An inactive user is accepted (rollback puts a contact back before reactivating it).
    assert_eq!(post(&sb, &t, "/tickets", r#"[{"id": 9002, "user_id": 5006}]"#).await.0, 201);

    let (status, created) = post(
        &sb,
        &t,
        "/tickets",
        r#"[{"client_id": 250, "site_id": 2501, "summary": "Offboarding", "details": "Start", "tickettype_id": 2, "team": "Offboarding", "_novalidate": true}]"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], 9901);
    assert_eq!((created["status_id"].clone(), created["tickettype_id"].clone()), (json!(1), json!(2)));
    assert_eq!((created["user_id"].clone(), created["client_name"].clone()), (json!(0), json!("Contoso Dental")));
    let (status, two) = post(
        &sb,
        &t,
        "/tickets",
        r#"[{"client_id": 270, "site_id": 2701, "summary": "a"}, {"client_id": 270, "site_id": 2701, "summary": "b"}]"#,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(ids(&json!({"t": two}), "t"), [9902, 9903], "several elements: an array");
    assert_eq!(halo.ticket_ids_of(270), [9701, 9702, 9703, 9902, 9903]);
    assert_eq!(sb.stats().count("POST", "/halo/api/tickets"), 16);
}

#[tokio::test]
async fn actions_need_an_outcome_and_keep_their_text() {
    let sb = sandbox().await;
    let t = token(&sb).await;
    for (bad, message) in [
        (r#"[{"ticket_id": 9010, "note_html": "<p>x</p>"}]"#, "An Outcome must be entered for this Action"),
        (r#"[{"ticket_id": 9010, "outcome_id": 99, "note_html": "x"}]"#, "Outcome 99 does not exist"),
        (r#"[{"ticket_id": 424242, "outcome_id": 7, "note_html": "x"}]"#, "Ticket 424242 does not exist"),
        (r#"[{"outcome_id": 7, "note_html": "x"}]"#, "A ticket_id is required"),
        (r#"[{"id": 3, "ticket_id": 9010, "outcome_id": 7}]"#, "not supported"),
    ] {
        let (status, body) = post(&sb, &t, "/actions", bad).await;
        assert_eq!((status, body["resultCode"].clone()), (400, json!(1)), "{bad}");
        assert!(body["errorMessage"].as_str().unwrap().contains(message), "{bad}: {body}");
    }
    let html = "<p>Contacts deactivated: 4 &amp; counting<br>Bob &lt;bob@x&gt;</p><p>Reason: &quot;done&quot; &#39;ok&#39;</p>";
    let body = json!([{"ticket_id": 9010, "outcome_id": 7, "note_html": html, "hiddenfromuser": true}]).to_string();
    let (status, action) = post(&sb, &t, "/actions", &body).await;
    assert_eq!(status, 201, "{action}");
    assert_eq!((action["outcome"].clone(), action["hiddenfromuser"].clone()), (json!("Private Note"), json!(true)));
    let text = "Contacts deactivated: 4 & counting\nBob <bob@x>\n\nReason: \"done\" 'ok'";
    assert_eq!(action["note"], text);
    assert_eq!(sb.psa("halo").ticket(9010).unwrap().notes, [text]);
    let (_, listed) = get(&sb, &t, "/actions", &[("ticket_id", "9010")]).await;
    assert_eq!(listed["record_count"], 1);
    assert_eq!(listed["actions"][0]["note_html"], html);
    assert!(sb.psa("halo").ticket(9001).unwrap().notes.is_empty());
    assert_eq!(sb.stats().count("POST", "/halo/api/actions"), 6);
}

#[tokio::test]
async fn assets_have_no_contact() {
    let sb = sandbox().await;
    let halo = sb.psa("halo");
    halo.set_configuration_contact(25001, Some(5002));
    assert_eq!(halo.configuration_contact(25001), None);
    assert!(sb.halo().asset(25001).unwrap().get("contact_id").is_none());
}

async fn token_with_scope(sb: &Sandbox, scope: &str) -> reqwest::Response {
    let form = [GOOD_FORM[0], GOOD_FORM[1], GOOD_FORM[2], ("scope", scope)];
    token_response(sb, Some(HALO_TENANT), &form).await
}

/// A token carries the scopes asked for: a GET needs `read:`, a POST `edit:` of its area
/// (`all` grants both); a missing scope is a 403 naming it, and nothing changes.
#[tokio::test]
async fn the_token_scope_is_enforced() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let response = token_with_scope(&sb, "read:assets read:customers").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "read:assets read:customers");
    let reader = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(get(&sb, &reader, "/asset/25001", &[]).await.0, 200);
    assert_eq!(get(&sb, &reader, "/client/250", &[]).await.0, 200);
    let (status, body) = get(&sb, &reader, "/tickets", &[("client_id", "250")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["Message"].as_str().unwrap().contains("read:tickets"), "{body}");
    let (status, body) = post_assets(&sb, &reader, r#"[{"id": 25001, "inactive": true}]"#).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["Message"].as_str().unwrap().contains("edit:assets"), "{body}");
    assert!(body["Message"].as_str().unwrap().contains(&reader), "the refusal echoes the token");
    assert_eq!(sb.halo().asset(25001).unwrap()["inactive"], false, "nothing changed");

    let editor: Value = token_with_scope(&sb, "edit:assets").await.json().await.unwrap();
    let editor = editor["access_token"].as_str().unwrap();
    assert_eq!(post_assets(&sb, editor, r#"[{"id": 25001, "inactive": true}]"#).await.0, 201);
    assert_eq!(get(&sb, editor, "/asset/25001", &[]).await.0, 403, "edit does not imply read");

    let unknown = token_with_scope(&sb, "all read:everything").await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "invalid_scope");
    assert_eq!(sb.halo().scopes_requested(), ["read:assets read:customers", "edit:assets", "all read:everything"]);
}

/// With [`HaloSim::omit_from_asset_answers`] an asset batch is applied in full but its answer
/// leaves the named assets out: the simulator's stand-in for Halo's UNCONFIRMED answer.
#[tokio::test]
async fn an_asset_batch_can_answer_without_some_items() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let live = token(&sb).await;
    sb.halo().omit_from_asset_answers(&[25002]);
    let (status, body) =
        post_assets(&sb, &live, r#"[{"id": 25001, "inactive": true}, {"id": 25002, "inactive": true}]"#).await;
    assert_eq!(status, 201);
    assert_eq!(ids(&json!({"assets": body}), "assets"), [25001], "25002 left out of the answer");
    assert_eq!(sb.halo().asset(25002).unwrap()["inactive"], true, "but updated");
    // Also through the admin API, which clears it with an empty list.
    let admin = reqwest::Client::new().post(format!("{}/_sandbox/settings", sb.base_url()));
    admin.json(&json!({"halo_asset_answer_omits": []})).send().await.unwrap();
    let (_, body) = post_assets(&sb, &live, r#"[{"id": 25002, "inactive": false}]"#).await;
    assert_eq!(ids(&json!({"assets": body}), "assets"), [25002]);
}

/// With [`HaloSim::ignore_asset_updates`] a batch answers 201 but leaves the named asset as
/// it was and out of the answer: a client must read it back, not count it changed.
#[tokio::test]
async fn an_asset_batch_can_skip_an_item_silently() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let live = token(&sb).await;
    sb.halo().ignore_asset_updates(&[25001]);
    let (status, body) =
        post_assets(&sb, &live, r#"[{"id": 25001, "inactive": true}, {"id": 25002, "inactive": true}]"#).await;
    assert_eq!(status, 201);
    assert_eq!(ids(&json!({"assets": body}), "assets"), [25002]);
    assert_eq!(sb.halo().asset(25001).unwrap()["inactive"], false, "skipped");
    assert_eq!(sb.halo().asset(25002).unwrap()["inactive"], true);
}
