//! The `webhook` function (issue 15, docs/architecture.md#psa-webhooks): a PSA's delivery
//! through API Gateway's HTTP API (payload 2.0) on `POST /webhooks/connectwise/{token}`,
//! `POST /webhooks/autotask` or `POST /webhooks/halo`, answered at once. It never runs a
//! workflow: at most it starts the client-offboarding chain's execution and returns.
//!
//! The order is the contract, and each step answers before the next has any effect:
//! 1. the route names the PSA (400 when it names none; 401 for a PSA this deployment has no
//!    webhook credentials for: nothing could authenticate against it);
//! 2. size (413), authentication (401), reading (400): `WebhookReceiver::receive`; nothing is
//!    recorded or started before a delivery is authenticated;
//! 3. the delivery log: a delivery seen before answers 200 "already received" and starts nothing;
//! 4. routing by the client's settings: `Ignore` answers 200 with why;
//! 5. `StartChain`: the execution named `execution_name(delivery key)` starts; 202 with its id.
//!
//! Why the delivery is first claimed for a short lease and only then remembered for days
//! ([`WebhookSettings::handling_lease`], then `delivery_ttl`): the claim keeps two concurrent
//! deliveries of one event from both going on, but it must not outlive a start that never
//! happened. When the start fails, the claim is forgotten and the answer is 5xx, so the PSA's
//! retry is a first delivery again. When the function dies between the claim and the start
//! (a timeout, a crash) nothing can forget the claim; the short lease then expires on its
//! own and the PSA's later retry starts the chain. Only after a successful start (or an
//! `Ignore`) is the delivery remembered for `delivery_ttl`: the claim itself is turned into
//! the long record in place, conditional on this invocation's owner token
//! (`DeliveryLog::keep`), so the key is never free between the two and a duplicate never
//! reaches the starter while the first delivery is handled. Every step after the claim may be
//! repeated safely because the execution name is deterministic: Step Functions starts one
//! execution of a name, whatever the number of deliveries that reach it. What remains: a
//! duplicate that arrives while the first delivery is still being handled is answered 200,
//! and if that first start then fails, only the first delivery's 5xx makes the PSA retry.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use serde_json::{Value, json};

use super::Answer;
use crate::chain::{ChainStep, ChainTrigger, ClientOffboardingRequest};
use crate::domain::{OffboardedCriteria, PsaKind, Workflow};
use crate::error::{ErrorCode, OfframpError};
use crate::ports::{ChainStarter, DeliveryClaim, DeliveryLog, SettingsStore};
use crate::webhook::{
    DEFAULT_DELIVERY_TTL, RouteDecision, WebhookEvent, WebhookReceiver, WebhookRequest, execution_name, route,
    trigger_policy,
};

mod build;

pub use build::build_webhook_services;

/// How long a first delivery is claimed while it is handled: past the function's timeout
/// (the template's 30 s), short against the PSAs' retry intervals (minutes to hours).
pub const DEFAULT_HANDLING_LEASE: Duration = Duration::from_secs(120);

/// The timing of the delivery log.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// How long a delivery whose chain started (or that was ignored) is remembered.
    pub delivery_ttl: Duration,
    /// How long a delivery is claimed while it is handled (see the module's comment).
    pub handling_lease: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { delivery_ttl: DEFAULT_DELIVERY_TTL, handling_lease: DEFAULT_HANDLING_LEASE }
    }
}

/// What the webhook function is built with, once per cold start.
#[derive(Clone)]
pub struct WebhookServices {
    receivers: Vec<WebhookReceiver>,
    pub deliveries: Arc<dyn DeliveryLog>,
    pub settings_store: Arc<dyn SettingsStore>,
    pub starter: Arc<dyn ChainStarter>,
    /// The deployment's offboarded criteria (`OFFRAMP_OFFBOARDED_*`).
    pub criteria: OffboardedCriteria,
    pub timing: WebhookSettings,
}

impl WebhookServices {
    pub fn new(
        deliveries: Arc<dyn DeliveryLog>,
        settings_store: Arc<dyn SettingsStore>,
        starter: Arc<dyn ChainStarter>,
        criteria: OffboardedCriteria,
    ) -> Self {
        Self {
            receivers: Vec::new(),
            deliveries,
            settings_store,
            starter,
            criteria,
            timing: WebhookSettings::default(),
        }
    }

    /// Accept deliveries of `receiver`'s PSA (one receiver per PSA; a later one replaces).
    pub fn with_receiver(mut self, receiver: WebhookReceiver) -> Self {
        self.receivers.retain(|r| r.psa() != receiver.psa());
        self.receivers.push(receiver);
        self
    }

    pub fn with_timing(mut self, timing: WebhookSettings) -> Self {
        self.timing = timing;
        self
    }

    fn receiver(&self, psa: PsaKind) -> Option<&WebhookReceiver> {
        self.receivers.iter().find(|r| r.psa() == psa)
    }
}

/// An answer of the webhook: a proxy response with a JSON body.
fn reply(status: u16, body: Value) -> Answer {
    Answer {
        payload: json!({
            "statusCode": status,
            "headers": {"content-type": "application/json"},
            "isBase64Encoded": false,
            "body": body.to_string(),
        }),
        error: None,
    }
}

/// A refusal, its status from the one table.
fn refused(code: ErrorCode, message: impl Into<String>) -> Answer {
    reply(code.http_status(), json!({"status": "refused", "code": code, "message": message.into()}))
}

fn refused_by(error: &OfframpError) -> Answer {
    refused(error.code(), error.to_string())
}

/// The answer of a binary whose adapters and function disagree (a deployment fault).
pub(crate) fn refused_without_services() -> Answer {
    refused(ErrorCode::ConfigurationError, "the webhook function and its adapters disagree (a deployment fault)")
}

/// Handle one webhook invocation. Never panics; every answer is a proxy response.
pub async fn webhook_event(services: &WebhookServices, event: Value) -> Answer {
    let http: ApiGatewayV2httpRequest = match serde_json::from_value(event) {
        Ok(http) => http,
        Err(e) => return refused(ErrorCode::InvalidInput, format!("not an API Gateway HTTP API event: {e}")),
    };
    if is_autotask_deactivation(&http) {
        return autotask_deactivated(&http);
    }
    let Some((psa, path_token)) = psa_of(&http) else {
        return refused(ErrorCode::InvalidInput, "not a webhook route: POST /webhooks/connectwise|autotask|halo");
    };
    let Some(receiver) = services.receiver(psa) else {
        // Nothing can authenticate against a PSA without credentials: the same 401 as a bad one.
        return refused(ErrorCode::Unauthenticated, format!("this deployment accepts no {psa} webhooks"));
    };
    let request = match webhook_request(&http, path_token, receiver) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let event = match receiver.receive(&request).await {
        Ok(event) => event,
        Err(e) => return refused(e.code(), e.to_string()),
    };
    handle_delivery(services, event).await
}

/// Steps 3 to 5 of the module's order, for an authenticated delivery.
async fn handle_delivery(services: &WebhookServices, event: WebhookEvent) -> Answer {
    let key = event.delivery_key.as_str().to_string();
    let log = services.deliveries.as_ref();
    let claim = match log.claim(&key, services.timing.handling_lease).await {
        Err(e) => return refused_by(&e.into()),
        Ok(None) => {
            tracing::info!(psa = %event.psa, delivery = %key, "webhook delivery already received");
            return reply(200, json!({"status": "already_received", "delivery_key": key}));
        }
        Ok(Some(claim)) => claim,
    };
    let decision = match decide(services, &event).await {
        Ok(decision) => decision,
        Err(e) => return forget_and_refuse(log, &key, &e).await,
    };
    match decision {
        RouteDecision::Ignore { why } => {
            remember(services, &claim).await;
            tracing::info!(psa = %event.psa, delivery = %key, %why, "webhook delivery ignored");
            reply(200, json!({"status": "ignored", "delivery_key": key, "why": why}))
        }
        RouteDecision::StartChain { client_id, workflows, itglue_deletion_confirmed_by } => {
            let request = chain_request(&event, &client_id, &workflows, itglue_deletion_confirmed_by.as_deref());
            let name = execution_name(&event.delivery_key);
            match services.starter.start(&name, &request).await {
                Err(e) => forget_and_refuse(log, &key, &e).await,
                Ok(started) if started.already_started => {
                    // A duplicate that reached the starter (the first delivery died after
                    // starting and its short claim expired): the execution of this name
                    // exists, nothing new started, and the answer is a duplicate's.
                    remember(services, &claim).await;
                    tracing::info!(psa = %event.psa, delivery = %key, execution = %started.execution_id,
                        "webhook delivery already started its chain");
                    reply(
                        200,
                        json!({"status": "already_received", "delivery_key": key, "execution_id": started.execution_id}),
                    )
                }
                Ok(started) => {
                    remember(services, &claim).await;
                    tracing::info!(psa = %event.psa, delivery = %key, execution = %started.execution_id,
                        already_started = started.already_started, "client-offboarding chain started");
                    reply(
                        202,
                        json!({"status": "started", "delivery_key": key, "client_id": client_id,
                            "execution_name": name, "execution_id": started.execution_id,
                            "already_started": started.already_started, "steps": request.steps()}),
                    )
                }
            }
        }
    }
}

/// The route for `event`, from its client's settings.
async fn decide(services: &WebhookServices, event: &WebhookEvent) -> Result<RouteDecision, OfframpError> {
    let Some(client_id) = event.company_id.as_deref() else {
        // No company to read settings for: `route` ignores it with the reason.
        let policy = crate::webhook::TriggerPolicy {
            criteria: services.criteria.clone(),
            workflows: Vec::new(),
            itglue_deletion: false,
            sources: Default::default(),
        };
        return Ok(route(event, &policy));
    };
    let policy =
        trigger_policy(services.settings_store.as_ref(), event.psa, client_id, services.criteria.clone()).await?;
    Ok(route(event, &policy))
}

/// Nothing was handed on: forget the claim so the PSA's retry is a first delivery, and
/// answer with the error's status (5xx for an outage, so the PSA retries).
async fn forget_and_refuse(log: &dyn DeliveryLog, key: &str, error: &OfframpError) -> Answer {
    if let Err(forget) = log.forget(key).await {
        // The claim's short lease ends it anyway (see the module's comment).
        tracing::warn!(delivery = %key, error = %forget, "could not forget the delivery; its lease will expire");
    }
    tracing::warn!(delivery = %key, code = %error.code(), error = %error, "webhook delivery not handed on");
    refused_by(error)
}

/// Remember a handled delivery for `delivery_ttl`: its short claim turned into the long
/// record in place, on the condition that the claim is still this invocation's
/// (`DeliveryLog::keep`), so a duplicate finds the key taken at every moment.
async fn remember(services: &WebhookServices, claim: &DeliveryClaim) {
    if let Err(e) = services.deliveries.keep(claim, services.timing.delivery_ttl).await {
        // Lost (the lease ran out and another delivery claimed it) or unwritable: the execution
        // name still refuses a second start.
        tracing::warn!(delivery = %claim.key, error = %e, "the delivery is remembered only for its handling lease");
    }
}

/// The chain's request for a delivery: the client, the steps the settings chose, and the
/// webhook as both trigger and initiator (never a body field).
fn chain_request(
    event: &WebhookEvent,
    client_id: &str,
    workflows: &[Workflow],
    itglue_confirmed_by: Option<&str>,
) -> ClientOffboardingRequest {
    let steps: Vec<ChainStep> = workflows.iter().filter_map(|w| chain_step(*w)).collect();
    let mut reason = format!("{} webhook: company {client_id} became offboarded", event.psa);
    if let Some(confirmed) = itglue_confirmed_by {
        reason.push_str(&format!("; IT Glue deletion confirmed by the setting {confirmed}"));
    }
    ClientOffboardingRequest {
        client_id: Some(client_id.to_string()),
        steps: Some(steps),
        reason: Some(reason),
        initiated_by: Some(format!("webhook:{}:{}", event.psa, event.delivery_key)),
        trigger: Some(ChainTrigger::Webhook {
            psa: event.psa.to_string(),
            delivery_key: event.delivery_key.to_string(),
        }),
        ..ClientOffboardingRequest::default()
    }
}

/// The chain's step of a workflow a webhook may start.
fn chain_step(workflow: Workflow) -> Option<ChainStep> {
    match workflow {
        Workflow::DeactivateConfigs => Some(ChainStep::DeactivateConfigs),
        Workflow::DeactivateContacts => Some(ChainStep::DeactivateContacts),
        Workflow::DeleteItglueOrg => Some(ChainStep::DeleteItglueOrg),
        Workflow::OffboardUser => Some(ChainStep::OffboardUsers),
        Workflow::Rollback | Workflow::ClientOffboarding => None,
    }
}

/// The PSA the route names and the ConnectWise token in the path, from
/// `…/webhooks/{psa}[/{token}]` (whatever stage prefix comes before).
fn psa_of(http: &ApiGatewayV2httpRequest) -> Option<(PsaKind, Option<String>)> {
    if http.request_context.http.method.as_str() != "POST" {
        return None;
    }
    let path = http.raw_path.as_deref().or(http.request_context.http.path.as_deref())?;
    let mut segments = path.split('/').filter(|s| !s.is_empty()).skip_while(|s| *s != "webhooks").skip(1);
    let psa = match segments.next()? {
        "connectwise" => PsaKind::ConnectWise,
        "autotask" => PsaKind::Autotask,
        "halo" | "halopsa" => PsaKind::Halo,
        _ => return None,
    };
    let token = segments.next().map(str::to_string);
    (segments.next().is_none()).then_some((psa, token))
}

/// The path Autotask calls when it deactivates a webhook (`offramp webhooks register`
/// registers `<url>/deactivated` as the webhook's deactivation URL).
const AUTOTASK_DEACTIVATION_PATH: &str = "/webhooks/autotask/deactivated";
/// The most of a deactivation notice's body that is accepted (it is not read).
const DEACTIVATION_NOTICE_MAX_BYTES: usize = 64 * 1024;

fn is_autotask_deactivation(http: &ApiGatewayV2httpRequest) -> bool {
    let path = http.raw_path.as_deref().or(http.request_context.http.path.as_deref()).unwrap_or_default();
    http.request_context.http.method.as_str() == "POST"
        && path.trim_end_matches('/').ends_with(AUTOTASK_DEACTIVATION_PATH)
}

/// Autotask deactivates a webhook after repeated failed deliveries and then calls its
/// deactivation URL (docs/vendors/autotask.md#webhooks). What that call carries, and whether
/// it is signed, is UNCONFIRMED, so nothing in it is read or trusted and it has no effect
/// but this: one error log line whose `webhook_deactivated` field the template's metric
/// filter counts, and the alarm on it tells the MSP that company changes no longer reach
/// Offramp. A forged call can raise only that alarm. Answered 200 (413 when oversized).
fn autotask_deactivated(http: &ApiGatewayV2httpRequest) -> Answer {
    let bytes = http.body.as_deref().map_or(0, str::len);
    if bytes > DEACTIVATION_NOTICE_MAX_BYTES * 4 / 3 + 4 {
        return refused(ErrorCode::PayloadTooLarge, format!("a deactivation notice of {bytes} bytes is not accepted"));
    }
    tracing::error!(
        webhook_deactivated = "autotask",
        body_bytes = bytes,
        "Autotask reports it deactivated the company webhook: company changes no longer reach Offramp. Find why \
         deliveries failed, then re-activate the webhook in Autotask (or run offramp webhooks register again)"
    );
    reply(
        200,
        json!({
            "status": "noted",
            "psa": "autotask",
            "message": "the webhook's deactivation is logged and alarmed; nothing else was done",
        }),
    )
}

/// The delivery as the library reads it: the raw body bytes, the headers, the URL token
/// (path segment, else the `token` query parameter). An encoded body far over the size
/// limit is refused before it is decoded.
fn webhook_request(
    http: &ApiGatewayV2httpRequest,
    path_token: Option<String>,
    receiver: &WebhookReceiver,
) -> Result<WebhookRequest, Answer> {
    let text = http.body.as_deref().unwrap_or_default();
    let limit = receiver.max_body_bytes();
    let body = if http.is_base64_encoded {
        if text.len() / 4 * 3 > limit + 3 {
            let e = crate::webhook::WebhookError::TooLarge { size: text.len() / 4 * 3, limit };
            return Err(refused(e.code(), e.to_string()));
        }
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| refused(ErrorCode::InvalidInput, "the body is not valid base64"))?
    } else {
        text.as_bytes().to_vec()
    };
    let mut request = WebhookRequest::new(body);
    for (name, value) in &http.headers {
        if let Ok(value) = value.to_str() {
            request = request.with_header(name.as_str(), value);
        }
    }
    let token = path_token.or_else(|| http.query_string_parameters.first("token").map(str::to_string));
    if let Some(token) = token {
        request = request.with_url_token(&token);
    }
    Ok(request)
}
