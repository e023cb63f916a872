//! The simulator behaves like the fact sheet (§2) says Autotask PSA does.

use std::time::Duration;

use offramp_sandbox::{AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, Sandbox, SandboxConfig};
use serde_json::{Value, json};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 1_200, ..SandboxConfig::default() }).await.unwrap()
}

fn with_auth(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("ApiIntegrationCode", AT_INTEGRATION_CODE)
        .header("UserName", AT_USERNAME)
        .header("Secret", AT_SECRET)
}

fn get(sb: &Sandbox, path: &str) -> reqwest::RequestBuilder {
    with_auth(reqwest::Client::new().get(format!("{}{path}", sb.autotask_url())))
}

fn post(sb: &Sandbox, path: &str, body: &Value) -> reqwest::RequestBuilder {
    with_auth(reqwest::Client::new().post(format!("{}{path}", sb.autotask_url()))).json(body)
}

fn patch(sb: &Sandbox, body: &Value) -> reqwest::RequestBuilder {
    with_auth(reqwest::Client::new().patch(format!("{}/ConfigurationItems", sb.autotask_url()))).json(body)
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn company_filter(company: i64) -> Value {
    json!({"filter": [{"op": "eq", "field": "companyID", "value": company}]})
}

#[tokio::test]
async fn zone_lookup_points_at_the_zone_base_url() {
    let sb = sandbox().await;
    let url = format!("{}/zoneInformation", sb.autotask_zone_lookup_url());
    let (status, zone) =
        json_of(reqwest::Client::new().get(&url).query(&[("user", AT_USERNAME.to_uppercase())]).send().await.unwrap())
            .await;
    assert_eq!(status, 200);
    assert_eq!(zone["url"], format!("{}/", sb.autotask_url()));
    assert_eq!(zone["ci"], 5);
    assert!(zone["webUrl"].as_str().unwrap().ends_with("/at5/"));
    let (status, body) =
        json_of(reqwest::Client::new().get(&url).query(&[("user", "nobody@example.com")]).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["errors"][0].as_str().unwrap().contains("nobody@example.com"));
    assert_eq!(sb.stats().count("GET", "/autotask/zoneInformation"), 2);
}

#[tokio::test]
async fn auth_quirks_500_for_bad_user_or_integration_code_401_for_bad_secret() {
    let sb = sandbox().await;
    let url = format!("{}/Companies/250", sb.autotask_url());
    let client = reqwest::Client::new();
    let call = |code: &str, user: &str, secret: &str| {
        client.get(&url).header("apiintegrationcode", code).header("username", user).header("secret", secret).send()
    };
    let (status, body) = json_of(call(AT_INTEGRATION_CODE, "someone@else.example", AT_SECRET).await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(body["errors"][0], "Unable to authenticate: the user name is not valid");
    let (status, body) = json_of(call("WRONGCODE", AT_USERNAME, AT_SECRET).await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(body["errors"][0], "Unable to authenticate: the integration code is not valid");
    let (status, body) = json_of(call(AT_INTEGRATION_CODE, AT_USERNAME, "wrong").await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0], "Unauthorized");
    let missing = client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let (status, body) = json_of(call(AT_INTEGRATION_CODE, AT_USERNAME, AT_SECRET).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["item"]["companyName"], "Contoso Dental");
}

#[tokio::test]
async fn get_by_id_uses_the_item_envelope_and_404s_when_missing() {
    let sb = sandbox().await;
    let (status, body) = json_of(get(&sb, "/companies/250").send().await.unwrap()).await;
    assert_eq!(status, 200, "entity names are case-insensitive");
    assert_eq!(body["item"]["isActive"], false);
    assert_eq!(body["item"]["companyType"], 6);
    assert_eq!(body["item"]["classification"], 101);
    let (_, northwind) = json_of(get(&sb, "/Companies/300").send().await.unwrap()).await;
    assert_eq!(northwind["item"]["isActive"], true, "the large client is an active company on Autotask");
    assert_eq!(northwind["item"]["companyType"], 1);
    let (_, disposed) = json_of(get(&sb, "/ConfigurationItems/25012").send().await.unwrap()).await;
    assert_eq!(disposed["item"]["isActive"], false);
    assert_eq!(disposed["item"]["configurationItemType"], 9);
    assert_eq!(disposed["item"]["referenceTitle"], "Dental Chair Tablet");
    let (_, on_order) = json_of(get(&sb, "/ConfigurationItems/25009").send().await.unwrap()).await;
    assert_eq!(on_order["item"]["isActive"], true);
    assert_eq!(on_order["item"]["configurationItemType"], 5);
    let (status, body) = json_of(get(&sb, "/ConfigurationItems/99999").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["errors"][0].as_str().unwrap().contains("not found"));
}

#[tokio::test]
async fn queries_filter_and_page_500_at_a_time_through_next_page_urls() {
    let sb = sandbox().await;
    let query = company_filter(300);
    let (status, first) = json_of(post(&sb, "/ConfigurationItems/query", &query).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 500);
    assert_eq!(first["pageDetails"]["count"], 500);
    assert_eq!(first["pageDetails"]["prevPageUrl"], Value::Null);
    let next = first["pageDetails"]["nextPageUrl"].as_str().unwrap().to_string();
    assert!(next.starts_with(&format!("{}/ConfigurationItems/query/next?", sb.autotask_url())), "{next}");

    // POST re-sends the body (as the PowerShell wrapper does); GET works too.
    let (_, second) = json_of(with_auth(reqwest::Client::new().post(&next)).json(&query).send().await.unwrap()).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 500);
    assert!(second["pageDetails"]["prevPageUrl"].is_string());
    let next = second["pageDetails"]["nextPageUrl"].as_str().unwrap().to_string();
    let (_, third) = json_of(with_auth(reqwest::Client::new().get(&next)).send().await.unwrap()).await;
    assert_eq!(third["items"].as_array().unwrap().len(), 200);
    assert_eq!(third["pageDetails"]["nextPageUrl"], Value::Null);
    let ids: Vec<i64> = [&first, &second, &third]
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids, (300001..=301200).collect::<Vec<_>>());

    // The previous-page URL leads back to the first page.
    let prev = second["pageDetails"]["prevPageUrl"].as_str().unwrap().to_string();
    let (_, back) = json_of(with_auth(reqwest::Client::new().get(&prev)).send().await.unwrap()).await;
    assert_eq!(back["items"][0]["id"], 300001);

    let (_, count) = json_of(post(&sb, "/ConfigurationItems/query/count", &query).send().await.unwrap()).await;
    assert_eq!(count["queryCount"], 1200);
    assert_eq!(sb.stats().count("POST", "/autotask/ConfigurationItems/query"), 1);
}

#[tokio::test]
async fn filter_operators_groups_projection_and_max_records() {
    let sb = sandbox().await;
    let run = |body: Value| {
        let sb = &sb;
        async move { json_of(post(sb, "/configurationitems/query", &body).send().await.unwrap()).await }
    };
    // Field names and string values are case-insensitive.
    let (_, active) = run(json!({"Filter": [{"op": "eq", "field": "CompanyId", "value": 250},
                                            {"op": "eq", "field": "isactive", "value": true}],
                                 "IncludeFields": ["referenceTitle"]}))
    .await;
    let items = active["items"].as_array().unwrap();
    assert_eq!(items.len(), 9, "8 Active + On Order");
    assert_eq!(items[0].as_object().unwrap().len(), 2, "only id + referenceTitle: {}", items[0]);
    let (_, named) = run(json!({"filter": [{"op": "or", "items": [
        {"op": "beginsWith", "field": "referenceTitle", "value": "reception"},
        {"op": "contains", "field": "referenceTitle", "value": "XRAY"}]}]}))
    .await;
    assert_eq!(named["items"].as_array().unwrap().len(), 3);
    let (_, listed) =
        run(json!({"filter": [{"op": "in", "field": "id", "value": [25001, 27004, 1]}], "MaxRecords": 1})).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["pageDetails"]["requestCount"], 1);
    assert!(listed["pageDetails"]["nextPageUrl"].is_string());
    let (_, companies) = json_of(
        get(&sb, "/Companies/query")
            .query(&[(
                "search",
                json!({"filter": [{"op": "eq", "field": "companyName", "value": "litware inc"}]}).to_string(),
            )])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<&Value> = companies["items"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, [&json!(410), &json!(411)]);

    for bad in [
        json!({"filter": []}),
        json!({}),
        json!({"filter": [{"op": "eq", "field": "isActive", "value": null}]}),
        json!({"filter": [{"op": "like", "field": "id", "value": 1}]}),
        json!({"filter": [{"op": "eq", "field": "noSuchField", "value": 1}]}),
    ] {
        let (status, body) = run(bad.clone()).await;
        assert_eq!(status, 500, "{bad}");
        assert!(body["errors"][0].is_string(), "{body}");
    }
    let (_, required) = run(json!({"filter": []})).await;
    assert_eq!(required["errors"][0], "A filter is required");
}

#[tokio::test]
async fn patch_sets_is_active_and_honours_injected_failures() {
    let sb = sandbox().await;
    let (status, body) = json_of(patch(&sb, &json!({"id": 25001, "IsActive": false})).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"itemId": 25001}));
    let at = sb.psa("autotask");
    assert_eq!(at.configuration_is_active(25001), Some(false));
    assert_eq!(sb.autotask().configuration(25001).unwrap()["referenceTitle"], "Firewall - HQ", "others unchanged");

    let (status, _) = json_of(patch(&sb, &json!({"id": 25002, "isActive": "no"})).send().await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(at.configuration_is_active(25002), Some(true));
    let (status, _) = json_of(patch(&sb, &json!({"id": 99999, "isActive": false})).send().await.unwrap()).await;
    assert_eq!(status, 404);

    at.fail_configuration_update(25003, "The configuration item is locked by another process");
    let (status, body) = json_of(patch(&sb, &json!({"id": 25003, "isActive": false})).send().await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(body["errors"][0], "The configuration item is locked by another process");
    assert_eq!(at.configuration_is_active(25003), Some(true));
    at.clear_configuration_failures();
    let (status, _) = json_of(patch(&sb, &json!({"id": 25003, "isActive": false})).send().await.unwrap()).await;
    assert_eq!(status, 200);

    assert_eq!(at.update_count(25003), 2);
    assert_eq!(at.update_count(25002), 1);
    assert_eq!(sb.stats().patches(), 4, "the unknown id did not reach an item");
    assert_eq!(sb.stats().count("PATCH", "/autotask/ConfigurationItems"), 5);
}

#[tokio::test]
async fn the_fourth_concurrent_request_on_an_endpoint_hits_the_thread_limit() {
    let sb = sandbox().await;
    sb.set_latency(Duration::from_millis(300));
    let requests = (0..6).map(|_| async { get(&sb, "/ConfigurationItems/25001").send().await.unwrap() });
    let other_endpoint = async { get(&sb, "/Companies/250").send().await.unwrap() };
    let (responses, other) = tokio::join!(futures::future::join_all(requests), other_endpoint);
    assert_eq!(other.status(), 200, "the limit is per endpoint");
    let mut rejected = 0;
    for response in responses {
        if response.status() == 429 {
            let body: Value = response.json().await.unwrap();
            assert!(body["errors"][0].as_str().unwrap().starts_with("Thread Threshold Exceeded"), "{body}");
            rejected += 1;
        } else {
            assert_eq!(response.status(), 200);
        }
    }
    assert_eq!(rejected, 3);
    let stats = sb.stats();
    assert_eq!(stats.thread_limit_rejections(), 3);
    assert_eq!(stats.throttled(), 3);
    assert_eq!(sb.autotask().threads_in_use(), 0, "slots are given back");
}

#[tokio::test]
async fn a_client_that_gives_up_frees_its_thread_slot() {
    let sb = sandbox().await;
    sb.set_latency(Duration::from_millis(800));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let url = format!("{}/ConfigurationItems/25001", sb.autotask_url());
    let gave_up = (0..3).map(|_| with_auth(impatient.get(&url)).send());
    for result in futures::future::join_all(gave_up).await {
        assert!(result.unwrap_err().is_timeout());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sb.autotask().threads_in_use(), 0, "the server dropped the abandoned requests");
}

#[tokio::test]
async fn the_hourly_budget_answers_429_and_threshold_information_reports_usage() {
    let sb = sandbox().await;
    for _ in 0..3 {
        get(&sb, "/Companies/250").send().await.unwrap();
    }
    let (status, usage) = json_of(get(&sb, "/ThresholdInformation").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        usage,
        json!({"externalRequestThreshold": 10000, "requestThresholdTimeframe": 60,
                             "currentTimeframeRequestCount": 4})
    );

    sb.set_autotask_hourly_limit(6);
    let (status, _) = json_of(get(&sb, "/Companies/250").send().await.unwrap()).await;
    assert_eq!(status, 200, "5th request");
    let (status, _) = json_of(get(&sb, "/Companies/250").send().await.unwrap()).await;
    assert_eq!(status, 200, "6th request");
    let (status, body) = json_of(get(&sb, "/Companies/250").send().await.unwrap()).await;
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0], "The request threshold of 6 requests per hour has been exceeded");
    assert_eq!(sb.stats().throttled(), 1);
}

#[tokio::test]
async fn a_limit_of_5_refuses_the_6th_request() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, autotask_hourly_limit: 5, ..Default::default() })
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(get(&sb, "/ConfigurationItems/25001").send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn picklists_are_described_by_entity_information() {
    let sb = sandbox().await;
    let (_, companies) = json_of(get(&sb, "/Companies/entityInformation/fields").send().await.unwrap()).await;
    let fields = companies["fields"].as_array().unwrap();
    let company_type = fields.iter().find(|f| f["name"] == "companyType").unwrap();
    assert_eq!(company_type["isPickList"], true);
    let labels: Vec<(&str, &str)> = company_type["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["value"].as_str().unwrap(), v["label"].as_str().unwrap()))
        .collect();
    assert!(labels.contains(&("6", "Cancellation")) && labels.contains(&("1", "Customer")), "{labels:?}");
    let classification = fields.iter().find(|f| f["name"] == "classification").unwrap();
    assert_eq!(classification["picklistValues"][1]["label"], "Offboarded");
    let (_, items) = json_of(get(&sb, "/ConfigurationItems/entityInformation/fields").send().await.unwrap()).await;
    let item_type = items["fields"].as_array().unwrap().iter().find(|f| f["name"] == "configurationItemType").unwrap();
    assert_eq!(
        item_type["picklistValues"][8],
        json!({"value": "9", "label": "Retired", "valueSortOrder": 8,
        "parentValue": "", "isDefaultValue": false, "isSystem": true, "isActive": true})
    );
}

#[tokio::test]
async fn contracts_are_queryable_by_company_and_end_date() {
    let sb = sandbox().await;
    let today = format!("{}T00:00:00", sb.today());
    let (status, body) = json_of(post(&sb, "/Contracts/query", &company_filter(250)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    let ids: Vec<i64> = items.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [2501, 2502]);
    for item in items {
        let end = item["endDate"].as_str().unwrap();
        assert!(end < today.as_str() && end.ends_with("T00:00:00"), "{item}");
        assert_eq!((item["status"].clone(), item["contractType"].clone()), (json!(1), json!(1)), "{item}");
    }

    // endDate lt today: 250's contracts, not 100's current one (1001).
    let ended = json!({"filter": [{"op": "lt", "field": "endDate", "value": today}]});
    let (_, body) = json_of(post(&sb, "/Contracts/query", &ended).send().await.unwrap()).await;
    let ids: Vec<i64> = body["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert!(ids.contains(&2501) && ids.contains(&2502), "{ids:?}");
    assert!(!ids.contains(&1001) && !ids.contains(&4111), "{ids:?}");
    let current = json!({"filter": [{"op": "gte", "field": "endDate", "value": today},
                                    {"op": "eq", "field": "status", "value": 1}]});
    let (_, body) = json_of(post(&sb, "/Contracts/query/count", &current).send().await.unwrap()).await;
    assert_eq!(body, json!({"queryCount": 2}), "1001 and 4111");

    // Open-ended and cancelled: a far end date and status 0.
    let (status, body) = json_of(get(&sb, "/Contracts/2602").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["item"]["endDate"], "2099-12-31T00:00:00");
    assert_eq!(body["item"]["status"], 0);
    assert_eq!(get(&sb, "/Contracts/999").send().await.unwrap().status(), 404);
    assert_eq!(sb.stats().count("POST", "/autotask/Contracts/query"), 2);
}
