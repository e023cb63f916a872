//! Helpers of the Microsoft 365 simulator tests: tokens per tenant and resource, Graph
//! and InvokeCommand calls that return (status, headers, JSON body).

use offramp_sandbox::m365::{EXCHANGE_SCOPE, GRAPH_SCOPE};
use offramp_sandbox::{GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, Sandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub(crate) async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap()
}

fn url_encoded(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The token endpoint's answer for `tenant` and `scope`.
pub(crate) async fn token_answer(sb: &Sandbox, tenant: &str, scope: &str) -> (u16, Value) {
    let form = [
        ("client_id", GRAPH_CLIENT_ID),
        ("client_secret", GRAPH_CLIENT_SECRET),
        ("scope", scope),
        ("grant_type", "client_credentials"),
    ];
    let response = reqwest::Client::new()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sb.entra_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(url_encoded(&form))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn token(sb: &Sandbox, tenant: &str, scope: &str) -> String {
    let (status, body) = token_answer(sb, tenant, scope).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

pub(crate) async fn graph_token(sb: &Sandbox, tenant: &str) -> String {
    token(sb, tenant, GRAPH_SCOPE).await
}

pub(crate) async fn exchange_token(sb: &Sandbox, tenant: &str) -> String {
    token(sb, tenant, EXCHANGE_SCOPE).await
}

pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// A Graph request: `path_and_query` below `/graph/v1.0`.
pub(crate) async fn graph(sb: &Sandbox, token: &str, method: &str, path_and_query: &str, body: Option<Value>) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request =
        reqwest::Client::new().request(method, format!("{}{path_and_query}", sb.graph_url())).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    reply(request.send().await.unwrap()).await
}

/// An absolute URL (an `@odata.nextLink`).
pub(crate) async fn graph_get_url(token: &str, url: &str) -> Reply {
    reply(reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap()).await
}

/// InvokeCommand in `tenant` with `token`.
pub(crate) async fn invoke(sb: &Sandbox, token: &str, tenant: &str, cmdlet: &str, parameters: Value) -> Reply {
    let response = reqwest::Client::new()
        .post(format!("{}/adminapi/beta/{tenant}/InvokeCommand", sb.exchange_url()))
        .bearer_auth(token)
        .header("X-AnchorMailbox", format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant}"))
        .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}))
        .send()
        .await
        .unwrap();
    reply(response).await
}
