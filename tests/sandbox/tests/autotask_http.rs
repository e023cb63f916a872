//! The simulator behaves as `docs/vendors/autotask.md` says Autotask PSA does.

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
    // The refusals echo what was presented, so a client that logs them would leak it.
    let (status, body) = json_of(call("WRONGCODE", AT_USERNAME, AT_SECRET).await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(body["errors"][0], "Unable to authenticate: the integration code WRONGCODE is not valid");
    let (status, body) = json_of(call(AT_INTEGRATION_CODE, AT_USERNAME, "wrong-secret").await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(body["errors"][0].as_str().unwrap().contains("'wrong-secret'"), "{body}");
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

fn request(sb: &Sandbox, method: reqwest::Method, path: &str, body: &Value) -> reqwest::RequestBuilder {
    with_auth(reqwest::Client::new().request(method, format!("{}{path}", sb.autotask_url()))).json(body)
}

fn ids_of(page: &Value) -> Vec<i64> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn contacts_render_is_active_as_an_integer_and_page_like_any_entity() {
    let sb = sandbox().await;
    let (status, jane) = json_of(get(&sb, "/Contacts/5001").send().await.unwrap()).await;
    assert_eq!(status, 200);
    let jane = &jane["item"];
    assert_eq!((jane["isActive"].clone(), jane["primaryContact"].clone()), (json!(1), json!(true)), "{jane}");
    assert_eq!(jane["emailAddress"], "jane.doe@contosodental.example");
    assert_eq!(
        (jane["firstName"].as_str(), jane["lastName"].as_str(), jane["title"].as_str()),
        (Some("Jane"), Some("Doe"), Some("CEO"))
    );
    let (_, olga) = json_of(get(&sb, "/Contacts/5006").send().await.unwrap()).await;
    assert_eq!(olga["item"]["isActive"], 0);

    let (_, all) = json_of(post(&sb, "/Contacts/query", &company_filter(250)).send().await.unwrap()).await;
    assert_eq!(ids_of(&all), (5001..=5007).collect::<Vec<_>>());
    let active = json!({"filter": [{"op": "eq", "field": "companyID", "value": 250},
                                   {"op": "eq", "field": "isActive", "value": 1}]});
    let (_, active) = json_of(post(&sb, "/Contacts/query", &active).send().await.unwrap()).await;
    assert_eq!(ids_of(&active), [5001, 5002, 5003, 5004, 5005, 5007]);
    let primary = json!({"filter": [{"op": "eq", "field": "companyID", "value": 250},
                                    {"op": "eq", "field": "primaryContact", "value": true}]});
    let (_, primary) = json_of(post(&sb, "/Contacts/query", &primary).send().await.unwrap()).await;
    assert_eq!(ids_of(&primary), [5001]);
    // A boolean cannot be compared with the integer isActive.
    let boolean = json!({"filter": [{"op": "eq", "field": "isActive", "value": true}]});
    let (status, body) = json_of(post(&sb, "/Contacts/query", &boolean).send().await.unwrap()).await;
    assert_eq!(status, 500);
    assert!(body["errors"][0].as_str().unwrap().contains("isActive"), "{body}");

    // 250 contacts of the large client, 100 a page through nextPageUrl.
    let query = json!({"filter": [{"op": "eq", "field": "companyID", "value": 300}], "MaxRecords": 100});
    let (_, page) = json_of(post(&sb, "/Contacts/query", &query).send().await.unwrap()).await;
    let mut ids = ids_of(&page);
    let mut next = page["pageDetails"]["nextPageUrl"].as_str().map(str::to_string);
    while let Some(url) = next {
        let (_, page) = json_of(with_auth(reqwest::Client::new().post(&url)).json(&query).send().await.unwrap()).await;
        assert!(page["items"].as_array().unwrap().len() <= 100);
        ids.extend(ids_of(&page));
        next = page["pageDetails"]["nextPageUrl"].as_str().map(str::to_string);
    }
    assert_eq!(ids, (300001..=300250).collect::<Vec<_>>());
    assert_eq!(sb.stats().count("POST", "/autotask/Contacts/query/next"), 2);
}

#[tokio::test]
async fn contacts_are_written_only_through_their_company_with_an_integer_is_active() {
    let sb = sandbox().await;
    let at = sb.psa("autotask");
    let method = reqwest::Method::PATCH;
    let (status, body) = json_of(
        request(&sb, method.clone(), "/Companies/250/Contacts", &json!({"id": 5002, "isActive": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"itemId": 5002})));
    assert_eq!(at.contact_is_active(5002), Some(false));
    assert_eq!(sb.autotask().contact(5002).unwrap()["title"], "IT Manager", "others unchanged");

    // A boolean, or any integer but 1 and 0, is refused.
    for bad in [json!(true), json!(false), json!(2), json!("1")] {
        let (status, body) = json_of(
            request(&sb, method.clone(), "/Companies/250/Contacts", &json!({"id": 5003, "isActive": bad}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 500, "{bad}");
        assert!(body["errors"][0].as_str().unwrap().contains("isActive"), "{body}");
    }
    assert_eq!(at.contact_is_active(5003), Some(true));

    // The child-entity rule: no top-level writes.
    let (status, body) =
        json_of(request(&sb, method.clone(), "/Contacts", &json!({"id": 5003, "isActive": 0})).send().await.unwrap())
            .await;
    assert_eq!(status, 405);
    assert!(body["errors"][0].as_str().unwrap().contains("/Companies/{parentId}/Contacts"), "{body}");
    assert_eq!(at.contact_is_active(5003), Some(true));
    // Another company's path, an unknown company, an unknown contact: 404.
    for (path, id) in
        [("/Companies/100/Contacts", 5003), ("/Companies/999/Contacts", 5003), ("/Companies/250/Contacts", 1)]
    {
        let (status, body) =
            json_of(request(&sb, method.clone(), path, &json!({"id": id, "isActive": 0})).send().await.unwrap()).await;
        assert_eq!(status, 404, "{path}");
        assert!(body["errors"][0].as_str().unwrap().contains("not found"), "{body}");
    }

    at.fail_contact_update(5004, "Contact 5004 is referenced by an open opportunity");
    let (status, body) = json_of(
        request(&sb, method.clone(), "/Companies/250/Contacts", &json!({"id": 5004, "isActive": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["errors"][0], "Contact 5004 is referenced by an open opportunity");
    assert_eq!(at.contact_is_active(5004), Some(true));
    at.clear_contact_failures();
    let (status, _) = json_of(
        request(&sb, method.clone(), "/Companies/250/Contacts", &json!({"id": 5004, "isActive": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(at.contact_update_count(5004), 2);
    assert_eq!(at.contact_update_count(5003), 4, "type refusals reached the contact; the 405 and 404s did not");
    let stats = sb.stats();
    assert_eq!(stats.count("PATCH", "/autotask/Companies/{id}/Contacts"), 10);
    assert_eq!(stats.count("PATCH", "/autotask/Contacts"), 1);
    assert_eq!(at.contact_ids_of(250), (5001..=5007).collect::<Vec<_>>());
}

#[tokio::test]
async fn open_tickets_are_status_not_complete_and_reassignment_needs_resource_and_role() {
    let sb = sandbox().await;
    let open = json!({"filter": [{"op": "eq", "field": "companyID", "value": 250},
                                 {"op": "noteq", "field": "status", "value": 5}]});
    let (_, body) = json_of(post(&sb, "/Tickets/query", &open).send().await.unwrap()).await;
    assert_eq!(ids_of(&body), [9001, 9002, 9003, 9005, 9010]);
    let (_, closed) = json_of(get(&sb, "/Tickets/9004").send().await.unwrap()).await;
    assert_eq!(closed["item"]["status"], 5);
    let (_, t) = json_of(get(&sb, "/Tickets/9001").send().await.unwrap()).await;
    let t = &t["item"];
    assert_eq!(
        (&t["contactID"], &t["assignedResourceID"], &t["assignedResourceRoleID"], &t["queueID"]),
        (&json!(5002), &json!(11), &json!(8), &json!(1))
    );
    assert_eq!(t["title"], "Printer offline at reception");

    let patch_ticket = |body: Value| {
        let sb = &sb;
        async move { json_of(request(sb, reqwest::Method::PATCH, "/Tickets", &body).send().await.unwrap()).await }
    };
    let (status, body) = patch_ticket(json!({"id": 9001, "assignedResourceID": 12})).await;
    assert_eq!(status, 500);
    assert_eq!(
        body["errors"][0],
        "When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID."
    );
    for bad in [
        json!({"id": 9001, "assignedResourceID": 99, "assignedResourceRoleID": 8}),
        json!({"id": 9001, "assignedResourceID": 12, "assignedResourceRoleID": 9}),
        json!({"id": 9001, "contactID": 7002}),
        json!({"id": 9001, "contactID": 424242}),
        json!({"id": 9001, "queueID": 99}),
        json!({"id": 9001, "status": "5"}),
    ] {
        let (status, body) = patch_ticket(bad.clone()).await;
        assert_eq!(status, 500, "{bad}");
        assert!(body["errors"][0].is_string(), "{body}");
    }
    let at = sb.psa("autotask");
    let before = at.ticket(9001).unwrap();
    assert_eq!(
        (before.owner_id, before.contact_id, before.board_id),
        (Some(11), Some(5002), Some(1)),
        "refusals changed nothing"
    );

    let (status, body) = patch_ticket(
        json!({"id": 9001, "assignedResourceID": 12, "assignedResourceRoleID": 8, "queueID": 4, "contactID": 5007}),
    )
    .await;
    assert_eq!((status, body), (200, json!({"itemId": 9001})));
    let after = at.ticket(9001).unwrap();
    assert_eq!((after.owner_id, after.contact_id, after.board_id), (Some(12), Some(5007), Some(4)));
    // null clears; fields not sent stay.
    let (status, _) = patch_ticket(json!({"id": 9001, "contactID": null})).await;
    assert_eq!(status, 200);
    let cleared = at.ticket(9001).unwrap();
    assert_eq!((cleared.contact_id, cleared.owner_id), (None, Some(12)));
    let (status, _) =
        patch_ticket(json!({"id": 9001, "assignedResourceID": null, "assignedResourceRoleID": null})).await;
    assert_eq!(status, 200);
    assert_eq!(sb.autotask().ticket_record(9001).unwrap()["assignedResourceRoleID"], Value::Null);
    let (status, _) = patch_ticket(json!({"id": 424242, "contactID": null})).await;
    assert_eq!(status, 404);
    assert_eq!(sb.stats().count("PATCH", "/autotask/Tickets"), 11);
}

#[tokio::test]
async fn tickets_are_created_and_notes_added_only_through_the_ticket() {
    let sb = sandbox().await;
    let new = json!({"companyID": 250, "title": "Contact offboarding", "description": "Six contacts",
                     "status": 1, "priority": 2, "queueID": 4});
    for missing in ["companyID", "title", "status", "priority"] {
        let mut body = new.clone();
        body.as_object_mut().unwrap().remove(missing);
        let (status, body) = json_of(post(&sb, "/Tickets", &body).send().await.unwrap()).await;
        assert_eq!(status, 500, "without {missing}");
        assert!(body["errors"][0].as_str().unwrap().contains(missing), "{body}");
    }
    let mut unknown_company = new.clone();
    unknown_company["companyID"] = json!(999);
    assert_eq!(post(&sb, "/Tickets", &unknown_company).send().await.unwrap().status(), 500);

    let (status, body) = json_of(post(&sb, "/Tickets", &new).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let id = body["itemId"].as_i64().unwrap();
    assert_eq!(id, 9704, "after the highest fixture ticket");
    let (_, created) = json_of(get(&sb, &format!("/Tickets/{id}")).send().await.unwrap()).await;
    assert_eq!(created["item"]["title"], "Contact offboarding");
    assert_eq!(created["item"]["queueID"], 4);
    assert!(created["item"]["ticketNumber"].as_str().unwrap().starts_with('T'));

    let note = json!({"title": "Offboarding", "description": "Contacts inactivated: 6", "noteType": 1, "publish": 2});
    let (status, body) = json_of(post(&sb, &format!("/Tickets/{id}/Notes"), &note).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(body["itemId"].as_i64().is_some(), "{body}");
    let (status, body) = json_of(
        post(&sb, "/TicketNotes", &json!({"ticketID": id, "description": "x", "noteType": 1, "publish": 2}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405, "child entity");
    assert!(body["errors"][0].as_str().unwrap().contains("/Tickets/{parentId}/Notes"), "{body}");
    for bad in [
        json!({"description": "no type", "publish": 2}),
        json!({"noteType": 1, "publish": 2}),
        json!({"description": "x", "noteType": 1, "publish": 9}),
    ] {
        let (status, _) = json_of(post(&sb, &format!("/Tickets/{id}/Notes"), &bad).send().await.unwrap()).await;
        assert_eq!(status, 500, "{bad}");
    }
    assert_eq!(post(&sb, "/Tickets/424242/Notes", &note).send().await.unwrap().status(), 404);

    let view = sb.psa("autotask").ticket(id).unwrap();
    assert_eq!(view.notes, ["Contacts inactivated: 6"]);
    assert_eq!((view.company_id, view.board_id, view.closed), (250, Some(4), false));
    let (_, notes) = json_of(
        post(&sb, "/TicketNotes/query", &json!({"filter": [{"op": "eq", "field": "ticketID", "value": id}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(notes["items"][0]["publish"], 2);
    assert!(sb.psa("autotask").ticket_ids_of(250).contains(&id));
    assert_eq!(sb.stats().count("POST", "/autotask/Tickets/{id}/Notes"), 5);
}

#[tokio::test]
async fn configuration_items_carry_their_contact_which_patch_changes() {
    let sb = sandbox().await;
    let (_, item) = json_of(get(&sb, "/ConfigurationItems/25001").send().await.unwrap()).await;
    assert_eq!(item["item"]["contactID"], 5002);
    let (_, item) = json_of(get(&sb, "/ConfigurationItems/25004").send().await.unwrap()).await;
    assert_eq!(item["item"]["contactID"], Value::Null);
    let at = sb.psa("autotask");
    let (status, _) = json_of(patch(&sb, &json!({"id": 25001, "contactID": 5007})).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(at.configuration_contact(25001), Some(5007));
    for bad in [json!(7002), json!(424242), json!(true)] {
        let (status, body) = json_of(patch(&sb, &json!({"id": 25001, "contactID": bad})).send().await.unwrap()).await;
        assert_eq!(status, 500, "{bad}");
        assert!(body["errors"][0].as_str().unwrap().contains("contactID"), "{body}");
    }
    assert_eq!(at.configuration_contact(25001), Some(5007));
    let (status, _) = json_of(patch(&sb, &json!({"id": 25001, "contactID": null})).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(at.configuration_contact(25001), None);
}

#[tokio::test]
async fn contact_and_ticket_routes_share_the_thread_limit_and_the_hourly_budget() {
    let sb = sandbox().await;
    sb.set_latency(Duration::from_millis(300));
    let writes = (0..5).map(|i| {
        request(&sb, reqwest::Method::PATCH, "/Companies/250/Contacts", &json!({"id": 5001 + i, "isActive": 1})).send()
    });
    let company_read = get(&sb, "/Companies/250").send();
    let ticket_read = get(&sb, "/Tickets/9001").send();
    let (writes, company_read, ticket_read) =
        tokio::join!(futures::future::join_all(writes), company_read, ticket_read);
    let statuses: Vec<u16> = writes.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    let company_status = company_read.unwrap().status().as_u16();
    // Parent-path writes count under `companies`, with the company read: 6 requests, 3 slots.
    let mut all = statuses.clone();
    all.push(company_status);
    assert_eq!(all.iter().filter(|s| **s == 429).count(), 3, "{all:?}");
    assert_eq!(ticket_read.unwrap().status(), 200, "tickets are another endpoint");
    assert_eq!(sb.stats().thread_limit_rejections(), 3);

    sb.set_latency(Duration::ZERO);
    sb.set_autotask_hourly_limit(sb.autotask().requests_in_last_hour() as u32);
    let (status, body) = json_of(post(&sb, "/Contacts/query", &company_filter(250)).send().await.unwrap()).await;
    assert_eq!(status, 429);
    assert!(body["errors"][0].as_str().unwrap().contains("requests per hour"), "{body}");
    let note = json!({"description": "x", "noteType": 1, "publish": 2});
    assert_eq!(post(&sb, "/Tickets/9001/Notes", &note).send().await.unwrap().status(), 429);
    assert!(sb.psa("autotask").ticket(9001).unwrap().notes.is_empty());
}
