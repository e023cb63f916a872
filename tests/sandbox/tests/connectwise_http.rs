//! The simulator behaves as `docs/vendors/connectwise.md` says ConnectWise does.

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
    // The refusal echoes the header and the credentials decoded from it (`x:y`).
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("Basic eDp5") && message.contains("'x:y'"), "{message}");
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

fn send(sb: &Sandbox, method: reqwest::Method, path: &str, body: &Value) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", sb.connectwise_url()))
        .header("authorization", auth())
        .header("clientId", CW_CLIENT_ID)
        .json(body)
}

async fn status_and_body(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids(records: &[Value]) -> Vec<i64> {
    records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn contacts_are_listed_inactive_included_with_primary_flags() {
    let sb = sandbox().await;
    let (status, all) = status_and_body(get(&sb, "/company/contacts").query(&[("conditions", "company/id=250")])).await;
    assert_eq!(status, 200);
    let all = all.as_array().unwrap().clone();
    assert_eq!(ids(&all), [5001, 5002, 5003, 5004, 5005, 5006, 5007]);
    let olga = all.iter().find(|c| c["id"] == 5006).unwrap();
    assert_eq!((olga["inactiveFlag"].clone(), olga["firstName"].clone()), (json!(true), json!("Olga")));
    let jane = all.iter().find(|c| c["id"] == 5001).unwrap();
    assert_eq!((jane["defaultFlag"].clone(), jane["title"].clone()), (json!(true), json!("CEO")));
    let email = jane["communicationItems"].as_array().unwrap().iter().find(|i| i["communicationType"] == "Email");
    assert_eq!(email.unwrap()["value"], "jane.doe@contosodental.example");
    assert_eq!(all.iter().filter(|c| c["defaultFlag"] == true).count(), 1);

    // A filter hides inactive ones only when asked for.
    let (_, active) = status_and_body(
        get(&sb, "/company/contacts").query(&[("conditions", "company/id=250 and inactiveFlag=false")]),
    )
    .await;
    assert_eq!(ids(active.as_array().unwrap()), [5001, 5002, 5003, 5004, 5005, 5007]);
    let (_, count) =
        status_and_body(get(&sb, "/company/contacts/count").query(&[("conditions", "company/id=300")])).await;
    assert_eq!(count, json!({"count": 250}));

    // The company names its default contact; 260 has none.
    let (_, company) = status_and_body(get(&sb, "/company/companies/250")).await;
    assert_eq!(
        (company["defaultContact"]["id"].clone(), company["defaultContact"]["name"].clone()),
        (json!(5001), json!("Jane Doe"))
    );
    let (_, empty) = status_and_body(get(&sb, "/company/companies/260")).await;
    assert!(empty.get("defaultContact").is_none(), "{empty}");

    let (status, one) = status_and_body(get(&sb, "/company/contacts/5002")).await;
    assert_eq!((status, one["lastName"].clone()), (200, json!("Wilson")));
    let (status, missing) = status_and_body(get(&sb, "/company/contacts/999")).await;
    assert_eq!((status, missing["code"].clone()), (404, json!("NotFound")));
    assert_eq!(sb.stats().count("GET", "/company/contacts"), 2);
    assert_eq!(sb.stats().count("GET", "/company/contacts/{id}"), 2);
}

#[tokio::test]
async fn contact_patch_validates_types_and_honours_injected_failures() {
    use offramp_sandbox::PsaSim;
    let sb = sandbox().await;
    let cw = sb.connectwise();
    let patch = |body: Value| send(&sb, reqwest::Method::PATCH, "/company/contacts/5002", &body);

    let (status, _) = status_and_body(patch(json!({"op": "replace", "path": "inactiveFlag", "value": true}))).await;
    assert_eq!(status, 400, "an object, not an array");
    let (status, body) =
        status_and_body(patch(json!([{"op": "replace", "path": "inactiveFlag", "value": "yes"}]))).await;
    assert_eq!(
        (status, body["code"].clone(), body["errors"][0]["field"].clone()),
        (400, json!("InvalidObject"), json!("inactiveFlag"))
    );
    let (status, _) = status_and_body(patch(json!([{"op": "remove", "path": "inactiveFlag"}]))).await;
    assert_eq!(status, 400);
    let (status, _) = status_and_body(patch(json!([{"op": "replace", "path": "company", "value": {"id": 100}}]))).await;
    assert_eq!(status, 400);
    assert_eq!(cw.contact_is_active(5002), Some(true), "refused patches change nothing");

    let (status, body) =
        status_and_body(patch(json!([{"op": "replace", "path": "inactiveFlag", "value": true}]))).await;
    assert_eq!((status, body["inactiveFlag"].clone(), body["id"].clone()), (200, json!(true), json!(5002)));
    assert_eq!(cw.contact_is_active(5002), Some(false));

    cw.fail_contact_update(5002, "Contact is locked by an agreement");
    let (status, body) =
        status_and_body(patch(json!([{"op": "replace", "path": "inactiveFlag", "value": false}]))).await;
    assert_eq!((status, body["message"].clone()), (400, json!("Contact is locked by an agreement")));
    assert_eq!(cw.contact_is_active(5002), Some(false));
    cw.clear_contact_failures();
    let (status, _) = status_and_body(patch(json!([{"op": "replace", "path": "inactiveFlag", "value": false}]))).await;
    assert_eq!(status, 200);
    assert_eq!(cw.contact_is_active(5002), Some(true));
    // Array bodies that reached the contact, refused and failed ones included (not the object body).
    assert_eq!(cw.contact_update_count(5002), 6);

    let (status, _) = status_and_body(send(
        &sb,
        reqwest::Method::PATCH,
        "/company/contacts/999",
        &json!([{"op": "replace", "path": "inactiveFlag", "value": true}]),
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(cw.contact_ids_of(250), [5001, 5002, 5003, 5004, 5005, 5006, 5007]);
}

#[tokio::test]
async fn open_tickets_filter_on_closed_flag_and_patches_are_validated_all_or_nothing() {
    use offramp_sandbox::PsaSim;
    let sb = sandbox().await;
    let cw = sb.connectwise();
    let (_, open) =
        status_and_body(get(&sb, "/service/tickets").query(&[("conditions", "company/id=250 and closedFlag=false")]))
            .await;
    let open = open.as_array().unwrap().clone();
    assert_eq!(ids(&open), [9001, 9002, 9003, 9005, 9010]);
    let first = &open[0];
    assert_eq!(
        (first["contact"]["id"].clone(), first["owner"]["id"].clone(), first["board"]["id"].clone()),
        (json!(5002), json!(11), json!(1))
    );
    assert!(open[4].get("contact").is_none(), "9010 has no contact: {}", open[4]);
    let (_, closed) = status_and_body(get(&sb, "/service/tickets/9004")).await;
    assert_eq!(closed["closedFlag"], true);

    let patch = |body: Value| send(&sb, reqwest::Method::PATCH, "/service/tickets/9001", &body);
    for (bad, field) in [
        (json!([{"op": "replace", "path": "owner", "value": {"id": 99}}]), "owner"),
        (json!([{"op": "replace", "path": "owner", "value": 12}]), "owner"),
        (json!([{"op": "replace", "path": "board", "value": {"id": 2}}]), "board"),
        (json!([{"op": "replace", "path": "contact", "value": {"id": 424242}}]), "contact"),
        (json!([{"op": "remove", "path": "owner"}]), "owner"),
        (json!([{"op": "remove", "path": "board"}]), "board"),
        // A valid change and an invalid one: neither is applied.
        (
            json!([{"op": "replace", "path": "contact", "value": {"id": 5005}}, {"op": "replace", "path": "owner", "value": {"id": 13}}]),
            "owner",
        ),
    ] {
        let (status, body) = status_and_body(patch(bad.clone())).await;
        assert_eq!((status, body["errors"][0]["field"].clone()), (400, json!(field)), "{bad}");
    }
    let view = cw.ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (Some(5002), Some(11), Some(1)));

    let (status, body) = status_and_body(patch(json!([
        {"op": "replace", "path": "contact", "value": {"id": 5007}},
        {"op": "replace", "path": "owner", "value": {"id": 12}},
        {"op": "replace", "path": "board", "value": {"id": 4}},
    ])))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["contact"]["name"].clone(), body["owner"]["identifier"].clone(), body["board"]["name"].clone()),
        (json!("Tom Baker"), json!("service.desk"), json!("Offboarding"))
    );
    let (status, body) = status_and_body(patch(json!([{"op": "remove", "path": "contact"}]))).await;
    assert_eq!(status, 200);
    assert!(body.get("contact").is_none(), "{body}");
    let view = cw.ticket(9001).unwrap();
    assert_eq!((view.contact_id, view.owner_id, view.board_id), (None, Some(12), Some(4)));
    let (status, _) = status_and_body(send(
        &sb,
        reqwest::Method::PATCH,
        "/service/tickets/999",
        &json!([{"op": "remove", "path": "contact"}]),
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(cw.ticket_ids_of(250), [9001, 9002, 9003, 9004, 9005, 9010]);
    assert_eq!(sb.stats().count("PATCH", "/service/tickets/{id}"), 10);
}

#[tokio::test]
async fn tickets_are_created_on_a_default_board_and_notes_need_text_and_a_flag() {
    use offramp_sandbox::PsaSim;
    let sb = sandbox().await;
    let post = |path: &str, body: Value| send(&sb, reqwest::Method::POST, path, &body);

    let (status, body) = status_and_body(post("/service/tickets", json!({"company": {"id": 250}}))).await;
    assert_eq!((status, body["errors"][0]["field"].clone()), (400, json!("summary")));
    let (status, body) =
        status_and_body(post("/service/tickets", json!({"summary": "x", "company": {"id": 999}}))).await;
    assert_eq!((status, body["errors"][0]["field"].clone()), (400, json!("company")));
    let (status, _) =
        status_and_body(post("/service/tickets", json!({"summary": "x", "company": {"id": 250}, "board": {"id": 7}})))
            .await;
    assert_eq!(status, 400);

    let (status, created) = status_and_body(post(
        "/service/tickets",
        json!({"summary": "Offboarding: Contoso Dental", "company": {"id": 250}, "initialDescription": "Started"}),
    ))
    .await;
    assert_eq!(status, 201);
    assert_eq!((created["board"]["id"].clone(), created["closedFlag"].clone()), (json!(1), json!(false)));
    assert!(created.get("initialDescription").is_none(), "write-only: {created}");
    let id = created["id"].as_i64().unwrap();
    let (_, on_board) = status_and_body(post(
        "/service/tickets",
        json!({"summary": "Second", "company": {"id": 250}, "board": {"id": 4}}),
    ))
    .await;
    assert_eq!(on_board["board"]["id"], 4);
    assert_ne!(on_board["id"], created["id"]);

    let notes = format!("/service/tickets/{id}/notes");
    let (status, _) = status_and_body(post(&notes, json!({"text": "no flag"}))).await;
    assert_eq!(status, 400, "at least one flag must be true");
    let (status, _) = status_and_body(post(&notes, json!({"text": "t", "internalAnalysisFlag": "true"}))).await;
    assert_eq!(status, 400, "flags are booleans");
    let (status, _) = status_and_body(post(&notes, json!({"internalAnalysisFlag": true}))).await;
    assert_eq!(status, 400, "text is required");
    let (status, note) =
        status_and_body(post(&notes, json!({"text": "Contacts set inactive: 6", "internalAnalysisFlag": true}))).await;
    assert_eq!((status, note["ticketId"].clone(), note["internalAnalysisFlag"].clone()), (201, json!(id), json!(true)));
    let (status, _) =
        status_and_body(post("/service/tickets/999/notes", json!({"text": "t", "internalAnalysisFlag": true}))).await;
    assert_eq!(status, 404);

    let (_, listed) = status_and_body(get(&sb, &notes)).await;
    let texts: Vec<&str> = listed.as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Started", "Contacts set inactive: 6"], "the initial description is the first note");
    let view = sb.connectwise().ticket(id).unwrap();
    assert_eq!(view.notes, ["Started", "Contacts set inactive: 6"]);
    assert_eq!((view.company_id, view.summary.as_str(), view.owner_id), (250, "Offboarding: Contoso Dental", None));
    assert!(sb.connectwise().ticket_ids_of(250).contains(&id));
    assert_eq!(sb.stats().count("POST", "/service/tickets"), 5);
    assert_eq!(sb.stats().count("POST", "/service/tickets/{id}/notes"), 5);
}

#[tokio::test]
async fn configurations_carry_a_contact_that_patches_replace_or_remove() {
    use offramp_sandbox::PsaSim;
    let sb = sandbox().await;
    let (_, config) = status_and_body(get(&sb, "/company/configurations/25001")).await;
    assert_eq!(
        (config["contact"]["id"].clone(), config["contact"]["name"].clone()),
        (json!(5002), json!("Bob Wilson"))
    );
    let (_, plain) = status_and_body(get(&sb, "/company/configurations/25004")).await;
    assert!(plain.get("contact").is_none(), "{plain}");

    let patch = |body: Value| send(&sb, reqwest::Method::PATCH, "/company/configurations/25001", &body);
    let (status, _) =
        status_and_body(patch(json!([{"op": "replace", "path": "contact", "value": {"id": 31337}}]))).await;
    assert_eq!(status, 400);
    let (status, _) = status_and_body(patch(json!([{"op": "replace", "path": "contact", "value": 5005}]))).await;
    assert_eq!(status, 400);
    let (status, _) = status_and_body(patch(json!([{"op": "remove", "path": "status"}]))).await;
    assert_eq!(status, 400, "only the contact can be removed");
    assert_eq!(sb.connectwise().configuration_contact(25001), Some(5002));
    let (status, body) =
        status_and_body(patch(json!([{"op": "replace", "path": "contact", "value": {"id": 5005}}]))).await;
    assert_eq!((status, body["contact"]["id"].clone()), (200, json!(5005)));
    let (status, body) = status_and_body(patch(json!([{"op": "remove", "path": "contact"}]))).await;
    assert_eq!(status, 200);
    assert!(body.get("contact").is_none(), "{body}");
    assert_eq!(sb.connectwise().configuration_contact(25001), None);
    sb.connectwise().set_configuration_contact(25001, Some(5001));
    assert_eq!(sb.connectwise().configuration_contact(25001), Some(5001));
}

async fn patch_configuration(sb: &Sandbox, id: i64, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .patch(format!("{}/company/configurations/{id}", sb.connectwise_url()))
        .header("authorization", auth())
        .header("clientid", CW_CLIENT_ID)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// A PATCH with an unknown path or no operations is refused in ConnectWise's 400 shape and
/// changes nothing; before, an unknown path was stored as a new field and `[]` answered 200.
#[tokio::test]
async fn configuration_patch_refuses_unknown_paths_and_empty_arrays() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let before = sb.connectwise().configuration(25001).unwrap();
    let (status, body) =
        patch_configuration(&sb, 25001, json!([{"op": "replace", "path": "activeFlg", "value": false}])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "InvalidObject");
    assert_eq!(body["errors"][0]["field"], "activeFlg", "{body}");
    assert_eq!(body["errors"][0]["resource"], "configuration");
    let (status, body) = patch_configuration(&sb, 25001, json!([])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "InvalidObject");
    // A valid operation beside an unknown one: all or nothing.
    let (status, _) = patch_configuration(
        &sb,
        25001,
        json!([{"op": "replace", "path": "status", "value": {"id": 2}}, {"op": "replace", "path": "colour", "value": "red"}]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(sb.connectwise().configuration(25001).unwrap(), before, "nothing changed");
    // The documented writable fields still work.
    let (status, body) =
        patch_configuration(&sb, 25001, json!([{"op": "replace", "path": "name", "value": "PC-1"}])).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("PC-1")), "{body}");
    // Contacts and tickets refuse an empty patch too.
    let empty = reqwest::Client::new()
        .patch(format!("{}/company/contacts/5001", sb.connectwise_url()))
        .header("authorization", auth())
        .header("clientid", CW_CLIENT_ID)
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
}

/// `conditions` naming a field the entity does not have is a 400 `InvalidObject` naming the
/// field, on lists and counts, instead of silently matching nothing.
#[tokio::test]
async fn conditions_on_an_unknown_field_are_refused() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    for (path, condition) in [
        ("/company/configurations", "company/id=250 and statusName=\"Inactive\""),
        ("/company/configurations/count", "compnay/id=250"),
        ("/company/contacts", "company/id=250 and inactive=false"),
        ("/service/tickets", "company/idx=250"),
        ("/finance/agreements", "endDat<[2026-01-01T00:00:00Z]"),
        ("/company/companies", "status/nom=\"Offboarded\""),
    ] {
        let response = get(&sb, path).query(&[("conditions", condition)]).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path} {condition}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "InvalidObject", "{path}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("Unknown field"), "{path}: {body}");
    }
    // Known fields, nested references and `lastUpdated` are accepted.
    for (path, condition) in [
        ("/company/configurations", "company/id=250 and status/name=\"Active\" and contact/id=5001"),
        ("/company/contacts", "company/id=250 and inactiveFlag=false and _info/lastUpdated>[2026-01-01T00:00:00Z]"),
        ("/service/tickets", "company/id=250 and closedFlag=false and lastUpdated>[2026-01-01T00:00:00Z]"),
    ] {
        let response = get(&sb, path).query(&[("conditions", condition)]).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} {condition}");
    }
    let tickets: Vec<Value> = get(&sb, "/service/tickets")
        .query(&[("conditions", "company/id=250 and lastUpdated>[2026-01-01T00:00:00Z]")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!tickets.is_empty(), "lastUpdated reads _info/lastUpdated");
}
