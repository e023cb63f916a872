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
async fn agreements_are_dated_relative_to_today_and_filter_on_end_date() {
    let sb = sandbox().await;
    let today = format!("{}T00:00:00Z", sb.today());

    // Company 250's two agreements both ended before today.
    let response = get(&sb, "/finance/agreements").query(&[("conditions", "company/id=250")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let agreements: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<i64> = agreements.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [2501, 2502]);
    for agreement in &agreements {
        let end = agreement["endDate"].as_str().unwrap();
        assert!(end < today.as_str() && end.ends_with("T00:00:00Z"), "{agreement}");
        assert!(agreement["startDate"].as_str().unwrap() < end, "{agreement}");
        assert_eq!(agreement["agreementStatus"], "Expired");
        assert_eq!(agreement["noEndingDateFlag"], false);
        assert_eq!(agreement["company"]["identifier"], "ContosoDental");
    }

    // endDate<[today]: 250's ended agreements, not 100's current one (1001) nor 411's.
    let ended = get(&sb, "/finance/agreements").query(&[("conditions", format!("endDate<[{today}]"))]).send().await;
    let agreements: Vec<Value> = ended.unwrap().json().await.unwrap();
    let ids: Vec<i64> = agreements.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert!(ids.contains(&2501) && ids.contains(&2502), "{ids:?}");
    assert!(!ids.contains(&1001) && !ids.contains(&4111), "{ids:?}");
    assert!(!ids.contains(&2602), "an open-ended agreement has no end date to compare: {ids:?}");
    let current = get(&sb, "/finance/agreements/1001").send().await.unwrap();
    let current: Value = current.json().await.unwrap();
    assert_eq!(current["agreementStatus"], "Active");
    assert!(current["endDate"].as_str().unwrap() > today.as_str());

    // Cancelled and open-ended agreements; counts take the same conditions.
    let open = get(&sb, "/finance/agreements").query(&[("conditions", "company/id=260")]).send().await.unwrap();
    let open: Vec<Value> = open.json().await.unwrap();
    let no_end = open.iter().find(|a| a["id"] == 2602).unwrap();
    assert_eq!(no_end["endDate"], Value::Null);
    assert_eq!(
        (no_end["noEndingDateFlag"].clone(), no_end["agreementStatus"].clone()),
        (json!(true), json!("Cancelled"))
    );
    let count = get(&sb, "/finance/agreements/count")
        .query(&[("conditions", "company/id=100 and cancelledFlag=false")])
        .send()
        .await
        .unwrap();
    assert_eq!(count.json::<Value>().await.unwrap(), json!({"count": 1}));
    assert_eq!(get(&sb, "/finance/agreements/999").send().await.unwrap().status(), 404);
    assert_eq!(sb.stats().count("GET", "/finance/agreements"), 3);
    assert_eq!(sb.stats().count("GET", "/finance/agreements/count"), 1);
}
