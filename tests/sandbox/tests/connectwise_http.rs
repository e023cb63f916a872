//! The simulator behaves like the fact sheet says ConnectWise does.

use base64::Engine;
use offramp_sandbox::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, Sandbox, SandboxConfig};
use serde_json::{Value, json};

fn auth() -> String {
    let token = format!("{CW_COMPANY_ID}+{CW_PUBLIC_KEY}:{CW_PRIVATE_KEY}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(token))
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 1_500, ..SandboxConfig::default() }).await.unwrap()
}

fn get(sb: &Sandbox, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("{}{path}", sb.connectwise_url()))
        .header("authorization", auth())
        .header("clientId", CW_CLIENT_ID)
}

#[tokio::test]
async fn credentials_and_client_id_are_required() {
    let sb = sandbox().await;
    let url = format!("{}/company/companies/250", sb.connectwise_url());
    let no_client_id = reqwest::Client::new().get(&url).header("authorization", auth()).send().await.unwrap();
    assert_eq!(no_client_id.status(), 401);
    assert!(no_client_id.text().await.unwrap().contains("clientId"));
    let bad_key = reqwest::Client::new()
        .get(&url)
        .header("authorization", "Basic eDp5")
        .header("clientid", CW_CLIENT_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), 401);
    let body: Value = bad_key.json().await.unwrap();
    assert_eq!(body["code"], "Unauthorized");
    let ok = get(&sb, "/company/companies/250").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["name"], "Contoso Dental");
}

#[tokio::test]
async fn lists_default_to_25_clamp_to_1000_and_link_to_the_next_page() {
    let sb = sandbox().await;
    let first = get(&sb, "/company/configurations").query(&[("conditions", "company/id=300")]).send().await.unwrap();
    let link = first.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(first.json::<Vec<Value>>().await.unwrap().len(), 25, "default page size");
    assert!(link.contains("rel=\"next\"") && link.contains("page=2"), "{link}");
    let big = get(&sb, "/company/configurations")
        .query(&[("conditions", "company/id=300"), ("pageSize", "5000")])
        .send()
        .await
        .unwrap();
    assert!(big.headers()["link"].to_str().unwrap().contains("page=2"));
    assert_eq!(big.json::<Vec<Value>>().await.unwrap().len(), 1000, "pageSize is clamped to 1000");
    let bad = get(&sb, "/company/configurations").query(&[("conditions", "name=Acme Ltd")]).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn patch_takes_an_array_and_sets_the_status_record() {
    let sb = sandbox().await;
    let url = format!("{}/company/configurations/25001", sb.connectwise_url());
    let client = reqwest::Client::new();
    let object = client
        .patch(&url)
        .header("authorization", auth())
        .header("clientid", CW_CLIENT_ID)
        .json(&json!({"op": "replace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(object.status(), 400);
    let unknown = client
        .patch(&url)
        .header("authorization", auth())
        .header("clientid", CW_CLIENT_ID)
        .json(&json!([{"op": "replace", "path": "status", "value": {"id": 99}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let ok = client
        .patch(&url)
        .header("authorization", auth())
        .header("clientid", CW_CLIENT_ID)
        .json(&json!([{"op": "replace", "path": "status", "value": {"id": 2}}]))
        .send()
        .await
        .unwrap();
    let updated: Value = ok.json().await.unwrap();
    assert_eq!(updated["status"]["name"], "Inactive");
    assert_eq!(updated["activeFlag"], false);
    // Counted: PATCHes with an array body that reached the configuration (the object body was refused first).
    assert_eq!(sb.connectwise().patch_count(25001), 2);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let sb = sandbox().await;
    sb.set_rate_limit(Some(3));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = get(&sb, "/company/companies/250").send().await.unwrap();
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
    assert_eq!(sb.stats().throttled(), 3);
}

#[tokio::test]
async fn agreements_filter_on_end_date() {
    let sb = sandbox().await;
    let today = chrono::Utc::now().date_naive().format("%Y-%m-%dT00:00:00Z").to_string();
    let ended = get(&sb, "/finance/agreements").query(&[("conditions", format!("endDate<[{today}]"))]).send().await;
    let agreements: Vec<Value> = ended.unwrap().json().await.unwrap();
    let companies: Vec<i64> = agreements.iter().map(|a| a["company"]["id"].as_i64().unwrap()).collect();
    assert!(companies.contains(&250) && !companies.contains(&411), "{companies:?}");
    let open = get(&sb, "/finance/agreements").query(&[("conditions", "company/id=260")]).send().await.unwrap();
    let open: Vec<Value> = open.json().await.unwrap();
    assert!(open.iter().any(|a| a["noEndingDateFlag"] == json!(true) && a["cancelledFlag"] == json!(true)));
}
