//! The webhook function driven in-process with API Gateway HTTP API events: a chain
//! starter that counts, the event builder, and the storm of deliveries the test
//! (tests/integration/webhook_function.rs) asserts on and `make bench` times
//! (`offramp-bench webhook-storm`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use offramp::chain::ClientOffboardingRequest;
use offramp::entry::{WebhookServices, webhook_event};
use offramp::error::{ErrorCode, OfframpError};
use offramp::ports::{ChainStarter, MemoryChainStarter, StartedChain, async_trait};
use serde_json::{Value, json};

use crate::webhooks::{AT_SECRET_KEY, CW_URL_TOKEN, autotask_signature, connectwise_signature};

/// A chain starter that counts its calls, keeps the executions in memory, and fails its
/// first `fail_first` calls (Step Functions unreachable).
#[derive(Debug, Default)]
pub struct CountingStarter {
    pub executions: MemoryChainStarter,
    calls: AtomicUsize,
    fail_first: AtomicUsize,
}

impl CountingStarter {
    pub fn failing_first(calls: usize) -> Self {
        let starter = Self::default();
        starter.fail_first.store(calls, Ordering::SeqCst);
        starter
    }

    /// Every call to `start`, whatever it answered.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The executions started, by name.
    pub fn started(&self) -> BTreeMap<String, ClientOffboardingRequest> {
        self.executions.started()
    }
}

#[async_trait]
impl ChainStarter for CountingStarter {
    async fn start(&self, name: &str, request: &ClientOffboardingRequest) -> Result<StartedChain, OfframpError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failing = self.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(OfframpError::new(ErrorCode::ChainStartFailed, "Step Functions is unreachable (injected)"));
        }
        self.executions.start(name, request).await
    }
}

/// An API Gateway HTTP API (payload 2.0) event of a POST to `path` with `headers` and the
/// raw `body`, base64-encoded as API Gateway sends a body it does not treat as text.
pub fn http_api_event(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), json!(value))).collect();
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "a1b2c3d4e5", "requestId": "r-1", "stage": "$default",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.20"},
            "timeEpoch": 1796551200000i64
        },
        "body": STANDARD.encode(body), "isBase64Encoded": true
    })
}

/// A ConnectWise delivery of `body`, signed with `signing_key`, to the URL with `token`.
pub fn connectwise_event(body: &[u8], signing_key: &str, token: &str) -> Value {
    let signature = connectwise_signature(signing_key, body);
    http_api_event(&format!("/webhooks/connectwise/{token}"), &[("x-content-signature", &signature)], body)
}

/// An Autotask delivery of `body` signed with `secret`.
pub fn autotask_event(body: &[u8], secret: &str) -> Value {
    let signature = autotask_signature(secret, body);
    http_api_event("/webhooks/autotask", &[("x-hook-signature", &signature)], body)
}

/// The status and JSON body of a webhook answer.
pub fn status_and_body(answer: &Value) -> (u16, Value) {
    let status = answer["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = answer["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    (status, body)
}

/// What one delivery of the storm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The first delivery of an event (in the list; not necessarily the first to arrive).
    Distinct,
    /// A repeat of a distinct event's exact delivery.
    Duplicate,
    BadSignature,
    /// Authenticated, but not a delivery Offramp can read.
    Malformed,
}

/// The storm's deliveries: `total` in all, 30 % duplicates, 5 % bad signatures, 5 %
/// malformed, the rest distinct offboarded companies; ConnectWise and Autotask alternate.
/// Shuffled by a fixed seed, so every run sends the same order.
pub fn storm(total: usize, key_url: &str, signing_key: &str) -> Vec<(Kind, Value)> {
    let (duplicates, bad, malformed) = (total * 30 / 100, total * 5 / 100, total * 5 / 100);
    let distinct = total - duplicates - bad - malformed;
    let event_of = |i: usize| -> Value {
        if i.is_multiple_of(2) {
            let body = crate::webhooks::connectwise_company_body(
                &format!("storm-{i}"),
                key_url,
                1000 + i as i64,
                "Offboarded",
            );
            connectwise_event(&body, signing_key, CW_URL_TOKEN)
        } else {
            let body = crate::webhooks::autotask_company_body(&format!("storm-{i}"), 1000 + i as i64, 1, false);
            autotask_event(&body, AT_SECRET_KEY)
        }
    };
    let mut deliveries: Vec<(Kind, Value)> = (0..distinct).map(|i| (Kind::Distinct, event_of(i))).collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..duplicates {
        let original = deliveries[(next() % distinct as u64) as usize].1.clone();
        deliveries.push((Kind::Duplicate, original));
    }
    for i in 0..bad {
        let body = crate::webhooks::autotask_company_body(&format!("forged-{i}"), 9000 + i as i64, 1, false);
        deliveries.push((Kind::BadSignature, autotask_event(&body, "not-the-secret")));
    }
    for i in 0..malformed {
        let body = json!({"Action": "Update", "Guid": format!("bad-{i}"), "EntityType": "Company"});
        deliveries.push((Kind::Malformed, autotask_event(body.to_string().as_bytes(), AT_SECRET_KEY)));
    }
    for i in (1..deliveries.len()).rev() {
        deliveries.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    deliveries
}

/// What the storm got back.
#[derive(Debug, Default)]
pub struct StormReport {
    /// (kind, status) → deliveries.
    pub answers: BTreeMap<(Kind, u16), usize>,
    pub panics: usize,
    /// Each delivery's answer time, sorted.
    pub latencies: Vec<Duration>,
    pub wall: Duration,
}

impl StormReport {
    pub fn count(&self, kind: Kind, status: u16) -> usize {
        self.answers.get(&(kind, status)).copied().unwrap_or(0)
    }

    pub fn of_kind(&self, kind: Kind) -> usize {
        self.answers.iter().filter(|((k, _), _)| *k == kind).map(|(_, n)| n).sum()
    }

    /// The answer time at `quantile` (0.5, 0.99).
    pub fn percentile(&self, quantile: f64) -> Duration {
        let index = ((self.latencies.len() as f64 * quantile).ceil() as usize).saturating_sub(1);
        self.latencies.get(index).copied().unwrap_or_default()
    }
}

/// Send every delivery through the handler, at most `concurrency` at once, each on its own
/// task so a panic is counted rather than ending the storm.
pub async fn run_storm(
    services: Arc<WebhookServices>,
    deliveries: Vec<(Kind, Value)>,
    concurrency: usize,
) -> StormReport {
    let started = Instant::now();
    let results: Vec<(Kind, Option<u16>, Duration)> = futures::stream::iter(deliveries)
        .map(|(kind, event)| {
            let services = services.clone();
            async move {
                let sent = Instant::now();
                let answer = tokio::spawn(async move { webhook_event(&services, event).await }).await;
                (kind, answer.ok().map(|a| status_and_body(&a).0), sent.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut report = StormReport { wall: started.elapsed(), ..StormReport::default() };
    for (kind, status, latency) in results {
        match status {
            Some(status) => *report.answers.entry((kind, status)).or_default() += 1,
            None => report.panics += 1,
        }
        report.latencies.push(latency);
    }
    report.latencies.sort();
    report
}
