//! The one HTTP layer every vendor client goes through.
//!
//! It owns what must be the same for ConnectWise, Autotask, HaloPSA, IT Glue and
//! Microsoft Graph: connect and read timeouts, a client-side rate limit per vendor
//! connection, bounded concurrency, retries (429 honouring `Retry-After`; 502/503/504
//! and broken connections only for requests that are safe to repeat), a tracing span
//! per request, and redaction so no credential reaches a log line or an error message.
//!
//! It also bounds what comes back ([`limits`]: body size, JSON depth, `Retry-After`) and
//! where credentials go ([`origin`]): https only (plain http only to a loopback address),
//! and no redirect is ever followed: a 3xx is [`HttpError::Redirected`], naming the host
//! it pointed to and nothing else (docs/architecture.md#the-http-layer).
//!
//! Vendor clients build an [`HttpRequest`], mark credential headers sensitive, and
//! interpret the [`HttpResponse`] themselves (error shapes differ by vendor).

mod budget;
pub mod limits;
pub mod origin;
#[cfg(test)]
mod proptests;
mod rate_limit;
pub mod shared_limits;

pub use budget::{BudgetExhausted, BudgetSettings, RequestBudget};
pub use limits::{DEFAULT_MAX_BODY_BYTES, JsonError, MAX_JSON_DEPTH, SMALL_BODY_BYTES};
pub use rate_limit::RateLimiter;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Tuning of one vendor connection.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Whole-request timeout (send, wait, read the body).
    pub request_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` we honour; a vendor asking for longer gets this
    /// (and the request fails after `max_retries` if it keeps asking).
    pub max_retry_after: Duration,
    /// Requests per second this connection may send; `None` for no client-side limit.
    pub rate_limit_per_sec: Option<f64>,
    /// Requests that may go out back to back before the rate limit spaces them.
    pub burst: u32,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Requests in flight at once to one endpoint (see [`HttpRequest::endpoint`]);
    /// Autotask allows 3 per endpoint per integration.
    pub max_concurrency_per_endpoint: Option<usize>,
    /// A budget over a rolling window (Autotask per hour, HaloPSA per five minutes).
    pub budget: Option<BudgetSettings>,
    /// Whether a 429 without `Retry-After` is the vendor's window being full (as opposed to
    /// another limit, such as Autotask's thread limit). On a connection with a [`budget`],
    /// such a refusal counts the window as full from now on: the request, and every other
    /// one, then waits for room within the budget's `max_wait` or stops with
    /// [`HttpError::BudgetExhausted`] (resumable), instead of backing off blindly into a
    /// connection error. Default: every such 429.
    ///
    /// [`budget`]: Self::budget
    pub window_refusal: fn(&HttpResponse) -> bool,
    /// The largest response body read; a larger one is [`HttpError::BodyTooLarge`] (a
    /// request can ask for less, [`HttpRequest::max_body`]).
    pub max_body_bytes: usize,
}

/// The default [`HttpSettings::window_refusal`]: every 429 without `Retry-After`.
fn any_refusal(_: &HttpResponse) -> bool {
    true
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_retries: 8,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
            rate_limit_per_sec: None,
            burst: 1,
            max_concurrency: 8,
            max_concurrency_per_endpoint: None,
            budget: None,
            window_refusal: any_refusal,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Whether a request may be sent again after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes that set a value (JSON-Patch `replace`): repeating them is harmless.
    Idempotent,
    /// Creates (a ticket, a note): only retried on 429, which means "not processed".
    OnlyWhenThrottled,
}

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    pub retry: Retry,
    /// The vendor's unit of per-endpoint limits (Autotask: the entity, e.g. `ConfigurationItems`).
    pub endpoint: Option<String>,
    /// This request's body cap, instead of the connection's [`HttpSettings::max_body_bytes`].
    pub max_body_bytes: Option<usize>,
}

impl HttpRequest {
    pub fn new(method: reqwest::Method, url: url::Url) -> Self {
        let retry = if method == reqwest::Method::POST { Retry::OnlyWhenThrottled } else { Retry::Idempotent };
        Self { method, url, headers: HeaderMap::new(), body: None, retry, endpoint: None, max_body_bytes: None }
    }

    /// Count this request against `endpoint`'s concurrency limit.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// A form-encoded body (OAuth token requests).
    pub fn form_body(mut self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.body = Some(body.into_bytes());
        self.headers
            .insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), value);
        }
        self
    }

    /// A credential header: marked sensitive so neither reqwest nor we ever print it.
    pub fn sensitive_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(mut value) = HeaderValue::from_str(value) {
            value.set_sensitive(true);
            self.headers.insert(HeaderName::from_static(name), value);
        }
        self
    }

    pub fn json_body(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self
    }

    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Read at most `bytes` of the answer (a token, a lookup: answers that are small by nature).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, nested at most [`MAX_JSON_DEPTH`] levels.
    pub fn json(&self) -> Result<serde_json::Value, JsonError> {
        limits::parse_json(&self.body)
    }

    /// The body as text for an error message, cut short.
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut excerpt: String = text.chars().take(300).collect();
        if text.chars().count() > 300 {
            excerpt.push('…');
        }
        excerpt
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be completed (connection refused, reset, timed out) after retries.
    #[error("{vendor}: {method} {path} failed after {attempts} attempt(s): {message}")]
    Connection { vendor: &'static str, method: String, path: String, attempts: u32, message: String },
    #[error("{vendor}: could not build request: {message}")]
    Build { vendor: &'static str, message: String },
    /// The rolling-window budget is spent; nothing was sent.
    #[error(
        "{vendor}: request budget of {limit} per {window_secs} s is spent; room again in {resets_in_secs} s",
        window_secs = window.as_secs(),
        resets_in_secs = resets_in.as_secs().max(1)
    )]
    BudgetExhausted { vendor: &'static str, limit: u32, window: Duration, resets_in: Duration },
    /// The vendor answered with a redirect. It was not followed: the request's credentials
    /// go only to the configured host. Names the host it pointed to, nothing more of it.
    #[error(
        "{vendor}: {method} {path} was answered HTTP {status}, a redirect to {target}: not followed (credentials go only to the configured host; check the URL setting)"
    )]
    Redirected { vendor: &'static str, method: String, path: String, status: u16, target: String },
    /// The answer's body passed the cap; reading stopped there.
    #[error("{vendor}: the answer from {host} is larger than {limit} bytes; reading stopped there")]
    BodyTooLarge { vendor: &'static str, host: String, limit: usize },
    /// The URL is neither https nor http to a loopback address: nothing was sent.
    #[error("{vendor}: refusing to send to {scheme}://{host}: only https (plain http only to a loopback address)")]
    InsecureUrl { vendor: &'static str, scheme: String, host: String },
    /// The store of the limits shared by every process (docs/reliability.md) could not be
    /// reached for long enough: nothing was sent, since no slot of the shared limit was had.
    #[error("{vendor}: nothing sent: {message}")]
    LimitStore { vendor: &'static str, message: String },
}

/// How one attempt failed.
enum Failure {
    /// The outcome is unknown (connection refused, reset, timed out): may be retried.
    Transport(String),
    /// The answer arrived and is refused (a redirect, a body over the cap): never retried.
    Refused(HttpError),
}

/// Replaces known secret values in text that is about to be logged or returned.
///
/// A secret rarely travels only as itself: it goes out base64-encoded (a Basic header),
/// percent-encoded (a form body, a query string) and comes back JSON-escaped (a vendor
/// echoing it in an error body). Each secret is therefore learned with those derived forms.
/// Clones share what was learned, so a bearer token a client obtains later (OAuth) is
/// redacted by every holder of the connection's redactor.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<std::sync::RwLock<Vec<String>>>,
}

/// Says how many forms it knows, never which: it holds every credential in the clear.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = self.secrets.read().unwrap_or_else(|e| e.into_inner()).len();
        f.debug_struct("Redactor").field("known_forms", &known).finish()
    }
}

impl Redactor {
    /// Secrets shorter than 4 characters are ignored: redacting them would mangle ordinary text.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let redactor = Self::default();
        for secret in secrets {
            redactor.learn(&secret);
        }
        redactor
    }

    /// Also redact `secret` (and its derived forms) from now on: a token obtained at run time.
    pub fn learn(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for form in derived_forms(secret) {
            if !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.secrets.read().unwrap_or_else(|e| e.into_inner()).iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED]");
            }
        }
        out
    }
}

/// `secret` as it may appear in text: raw, percent-encoded (form style with `+` for a space,
/// and `%20` style), JSON-escaped (without the quotes), and base64 (standard, URL-safe).
fn derived_forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_string();
    let base64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let base64_url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let mut forms = vec![secret.to_string(), form, percent, json, base64.trim_end_matches('=').to_string(), base64_url];
    forms.retain(|f| f.len() >= 4);
    forms.dedup();
    forms
}

/// Counters a benchmark or a report can read.
#[derive(Debug, Default)]
pub struct HttpCounters {
    pub requests: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
    pub throttled: std::sync::atomic::AtomicU64,
}

/// A vendor connection: one per vendor per process, shared by all tasks.
#[derive(Clone)]
pub struct HttpClient {
    vendor: &'static str,
    inner: reqwest::Client,
    settings: Arc<HttpSettings>,
    limiter: Option<Arc<RateLimiter>>,
    in_flight: Arc<Semaphore>,
    per_endpoint: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    budget: Option<Arc<RequestBudget>>,
    /// The limits shared with every process of the deployment, once [`HttpClient::share_limits`]
    /// set them (clones share them).
    shared: Arc<std::sync::OnceLock<shared_limits::SharedLimits>>,
    redactor: Redactor,
    counters: Arc<HttpCounters>,
}

impl HttpClient {
    pub fn new(vendor: &'static str, settings: HttpSettings, redactor: Redactor) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("offramp/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: credentials would follow it (origin.rs).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::Build { vendor, message: redactor.scrub(&e.to_string()) })?;
        let limiter = settings
            .rate_limit_per_sec
            .filter(|rate| *rate > 0.0)
            .map(|rate| Arc::new(RateLimiter::new(rate, settings.burst.max(1))));
        let in_flight = Arc::new(Semaphore::new(settings.max_concurrency.max(1)));
        let budget = settings.budget.clone().map(|b| Arc::new(RequestBudget::new(b)));
        Ok(Self {
            vendor,
            inner,
            settings: Arc::new(settings),
            limiter,
            in_flight,
            per_endpoint: Arc::default(),
            budget,
            shared: Arc::default(),
            redactor,
            counters: Arc::default(),
        })
    }

    /// Count this connection's rate limit and request window in `store`, together with
    /// every other process that uses the same store and `scope` (the vendor account: its
    /// base URL and account id), instead of per process (docs/reliability.md#vendor-limits-shared-by-every-process).
    /// Set once; later calls change nothing and return `false`.
    pub fn share_limits(&self, store: Arc<dyn shared_limits::SharedLimitStore>, scope: &str) -> bool {
        use shared_limits::{SharedLimits, SharedSchedule, SharedWindow, limit_key};
        let schedule =
            self.limiter.as_ref().map(|_| SharedSchedule::new(store.clone(), limit_key(self.vendor, "rate", scope)));
        let window = self
            .settings
            .budget
            .clone()
            .map(|budget| SharedWindow::new(store.clone(), limit_key(self.vendor, "window", scope), budget));
        self.shared.set(SharedLimits { schedule, window }).is_ok()
    }

    /// The limits this connection shares with other processes, if [`Self::share_limits`] was called.
    pub fn shared_limits(&self) -> Option<&shared_limits::SharedLimits> {
        self.shared.get()
    }

    /// The rolling-window budget, if this connection has one.
    pub fn budget(&self) -> Option<&RequestBudget> {
        self.budget.as_deref()
    }

    fn endpoint_permits(&self, endpoint: &str) -> Option<Arc<Semaphore>> {
        let limit = self.settings.max_concurrency_per_endpoint?;
        let mut map = self.per_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        let key = endpoint.to_ascii_lowercase();
        Some(map.entry(key).or_insert_with(|| Arc::new(Semaphore::new(limit.max(1)))).clone())
    }

    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn counters(&self) -> &HttpCounters {
        &self.counters
    }

    /// Send a request, retrying as its [`Retry`] allows. Any HTTP status but a redirect is
    /// returned as a response (after retries for 429/502/503/504); transport failures, a
    /// redirect, a body over the cap and a URL that is not https are errors.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if !origin::transport_allowed(&request.url) {
            return Err(HttpError::InsecureUrl {
                vendor: self.vendor,
                scheme: request.url.scheme().to_string(),
                host: origin::host_of(&request.url),
            });
        }
        let path = self.redactor.scrub(request.url.path());
        let span = tracing::debug_span!(
            "http",
            vendor = self.vendor,
            method = %request.method,
            path = %path,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.send_with_retries(request, &path).instrument(span).await
    }

    async fn send_with_retries(&self, request: HttpRequest, path: &str) -> Result<HttpResponse, HttpError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = match self.permitted_attempt(&request).await? {
                Ok(response) => Ok(response),
                Err(Failure::Transport(message)) => Err(message),
                Err(Failure::Refused(error)) => return Err(error),
            };
            let span = tracing::Span::current();
            span.record("attempts", attempt);
            let retries_left = attempt <= self.settings.max_retries;
            let wait = match &outcome {
                Ok(response) => {
                    span.record("status", response.status);
                    match response.status {
                        429 => {
                            self.counters.throttled.fetch_add(1, Relaxed);
                            let wait = self.throttled_wait(response, attempt).await;
                            if let Some(limiter) = &self.limiter {
                                limiter.throttled(wait);
                            }
                            if let Some(schedule) = self.shared.get().and_then(|shared| shared.schedule.as_ref()) {
                                schedule.throttled(wait).await;
                            }
                            Some(wait)
                        }
                        status => {
                            if let Some(limiter) = &self.limiter {
                                limiter.answered();
                            }
                            (matches!(status, 502..=504) && request.retry == Retry::Idempotent)
                                .then(|| self.backoff(attempt))
                        }
                    }
                }
                Err(_) if request.retry == Retry::Idempotent => Some(self.backoff(attempt)),
                Err(_) => None,
            };
            match (wait, retries_left) {
                (Some(wait), true) => {
                    self.counters.retries.fetch_add(1, Relaxed);
                    let why = match &outcome {
                        Ok(response) => format!("HTTP {}", response.status),
                        Err(message) => message.clone(),
                    };
                    tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, why = %why, "retrying");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return outcome.map_err(|message| HttpError::Connection {
                        vendor: self.vendor,
                        method: request.method.to_string(),
                        path: path.to_string(),
                        attempts: attempt,
                        message,
                    });
                }
            }
        }
    }

    /// One attempt once the rate limit, the concurrency limits and the budget let it go out.
    /// The outer error is a spent budget (nothing was sent).
    async fn permitted_attempt(&self, request: &HttpRequest) -> Result<Result<HttpResponse, Failure>, HttpError> {
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let endpoint_permits = request.endpoint.as_deref().and_then(|e| self.endpoint_permits(e));
        // The permits are held only while the request is on the wire, not while backing
        // off, so a throttled request does not block the others' slots.
        let _endpoint_permit = match &endpoint_permits {
            Some(permits) => Some(permits.acquire().await.expect("semaphore is never closed")),
            None => None,
        };
        let _permit = self.in_flight.acquire().await.expect("semaphore is never closed");
        // The shared slot and budgets last, right before sending: every attempt that goes out counts.
        let shared = self.shared.get();
        if let (Some(schedule), Some(limiter)) = (shared.and_then(|s| s.schedule.as_ref()), &self.limiter) {
            schedule.acquire(limiter).await.map_err(|e| self.limit_store_error(&e))?;
        }
        if let Some(budget) = &self.budget
            && let Err(spent) = budget.acquire().await
        {
            return Err(self.budget_spent(spent));
        }
        if let Some(window) = shared.and_then(|s| s.window.as_ref()) {
            match window.acquire().await {
                Ok(()) => {}
                Err(shared_limits::WindowRefusal::Exhausted(spent)) => return Err(self.budget_spent(spent)),
                Err(shared_limits::WindowRefusal::Store(e)) => return Err(self.limit_store_error(&e)),
            }
        }
        self.counters.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.attempt(request).await)
    }

    fn budget_spent(&self, spent: BudgetExhausted) -> HttpError {
        tracing::warn!(limit = spent.limit, resets_in_s = spent.resets_in.as_secs(), "request budget spent");
        HttpError::BudgetExhausted {
            vendor: self.vendor,
            limit: spent.limit,
            window: spent.window,
            resets_in: spent.resets_in,
        }
    }

    fn limit_store_error(&self, error: &shared_limits::SharedLimitError) -> HttpError {
        tracing::warn!(error = %error, "shared limit store unavailable: request not sent");
        HttpError::LimitStore { vendor: self.vendor, message: self.redactor.scrub(&error.to_string()) }
    }

    /// One attempt. Transport errors come back as a redacted message.
    async fn attempt(&self, request: &HttpRequest) -> Result<HttpResponse, Failure> {
        let mut builder =
            self.inner.request(request.method.clone(), request.url.clone()).headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(|e| Failure::Transport(self.describe(&e)))?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(Failure::Refused(self.redirected(request, status, response.headers())));
        }
        let headers = response.headers().clone();
        let limit = request.max_body_bytes.unwrap_or(self.settings.max_body_bytes);
        let body = limits::read_capped(response, limit).await.map_err(|stopped| match stopped {
            limits::CappedRead::TooLarge => Failure::Refused(HttpError::BodyTooLarge {
                vendor: self.vendor,
                host: origin::host_of(&request.url),
                limit,
            }),
            limits::CappedRead::Transport(e) => Failure::Transport(self.describe(&e)),
        })?;
        Ok(HttpResponse { status, headers, body })
    }

    /// The error for a 3xx answer: the host it points to (resolved against the request's
    /// URL), never the rest of the location, which may carry tokens.
    fn redirected(&self, request: &HttpRequest, status: u16, headers: &HeaderMap) -> HttpError {
        let target = headers
            .get(reqwest::header::LOCATION)
            .and_then(|location| location.to_str().ok())
            .and_then(|location| request.url.join(location).ok())
            .map_or_else(|| "(no usable Location)".to_string(), |url| origin::host_of(&url));
        tracing::warn!(status, target = %target, "redirect refused");
        HttpError::Redirected {
            vendor: self.vendor,
            method: request.method.to_string(),
            path: self.redactor.scrub(request.url.path()),
            status,
            target: self.redactor.scrub(&target),
        }
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        // reqwest's Display names the URL; walk the source chain for the cause.
        let mut message = if error.is_timeout() {
            "timed out".to_string()
        } else if error.is_connect() {
            "connection failed".to_string()
        } else if error.is_body() || error.is_decode() {
            "connection broke while reading the response".to_string()
        } else {
            "request failed".to_string()
        };
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        self.redactor.scrub(&message)
    }

    /// How long to wait after a 429: the vendor's `Retry-After`; else, on a connection that
    /// keeps the vendor's window (a budget), nothing here: the window is counted full and
    /// the next attempt's budget waits for room or stops the run cleanly; else a backoff.
    async fn throttled_wait(&self, response: &HttpResponse, attempt: u32) -> Duration {
        if let Some(wait) = self.retry_after(response) {
            return wait;
        }
        match &self.budget {
            Some(budget) if (self.settings.window_refusal)(response) => {
                tracing::warn!(
                    limit = budget.settings().limit,
                    window_s = budget.settings().window.as_secs(),
                    "the vendor's request window is full (429 without Retry-After): waiting for room"
                );
                budget.fill_window().await;
                if let Some(window) = self.shared.get().and_then(|shared| shared.window.as_ref()) {
                    window.fill().await;
                }
                Duration::ZERO
            }
            _ => self.backoff(attempt),
        }
    }

    fn retry_after(&self, response: &HttpResponse) -> Option<Duration> {
        limits::retry_after_wait(response.header("retry-after")?, self.settings.max_retry_after, chrono::Utc::now())
    }

    /// Exponential backoff with full jitter: a random wait up to base·2^(attempt-1), capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.settings.base_backoff.saturating_mul(1u32 << (attempt - 1).min(16));
        let cap = exp.min(self.settings.max_backoff);
        let millis = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_replaces_every_secret_and_ignores_tiny_ones() {
        let redactor = Redactor::new(vec!["pub-key-123".into(), "priv-key-SECRET".into(), "ab".into()]);
        let text = "auth pub-key-123:priv-key-SECRET failed for ab";
        let scrubbed = redactor.scrub(text);
        assert_eq!(scrubbed, "auth [REDACTED]:[REDACTED] failed for ab");
    }

    #[test]
    fn redactor_knows_the_encoded_forms_and_learns_tokens() {
        use base64::Engine;
        let secret = r#"s3cr+t/k=y&"q\"#;
        let redactor = Redactor::new(vec![secret.to_string()]);
        let base64 = base64::engine::general_purpose::STANDARD.encode(secret);
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let json = serde_json::to_string(secret).unwrap();
        for text in [secret.to_string(), base64, form, json] {
            assert!(!redactor.scrub(&format!("echo {text} end")).contains(&text[1..text.len() - 1]), "{text}");
        }
        let shared = redactor.clone();
        redactor.learn("access-token-123");
        assert_eq!(shared.scrub("Bearer access-token-123"), "Bearer [REDACTED]");
    }

    #[test]
    fn a_redactor_printed_for_debugging_shows_no_secret() {
        let redactor = Redactor::new(vec!["priv-key-SECRET".to_string()]);
        redactor.learn("access-token-123");
        let printed = format!("{redactor:?} {redactor:#?}");
        assert!(!printed.contains("SECRET") && !printed.contains("token-123"), "{printed}");
        assert!(printed.contains("known_forms"), "{printed}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let settings = HttpSettings {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..HttpSettings::default()
        };
        let client = HttpClient::new("test", settings, Redactor::default()).unwrap();
        for _ in 0..50 {
            let first = client.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let tenth = client.backoff(10);
            assert!(tenth >= Duration::from_millis(500) && tenth <= Duration::from_millis(1000), "{tenth:?}");
        }
    }

    #[test]
    fn retry_after_accepts_seconds_and_is_capped() {
        let settings = HttpSettings { max_retry_after: Duration::from_secs(5), ..HttpSettings::default() };
        let client = HttpClient::new("test", settings, Redactor::default()).unwrap();
        let mut response = HttpResponse { status: 429, headers: HeaderMap::new(), body: vec![] };
        response.headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(client.retry_after(&response), Some(Duration::from_secs(2)));
        response.headers.insert("retry-after", HeaderValue::from_static("3600"));
        assert_eq!(client.retry_after(&response), Some(Duration::from_secs(5)));
        response.headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(client.retry_after(&response), None);
    }

    #[test]
    fn absurd_retry_after_values_are_capped_not_a_panic() {
        let settings = HttpSettings { max_retry_after: Duration::from_secs(5), ..HttpSettings::default() };
        let client = HttpClient::new("test", settings, Redactor::default()).unwrap();
        let mut response = HttpResponse { status: 429, headers: HeaderMap::new(), body: vec![] };
        for huge in ["inf", "+inf", "infinity", "1e300", "18446744073709551616"] {
            response.headers.insert("retry-after", HeaderValue::from_static(huge));
            assert_eq!(client.retry_after(&response), Some(Duration::from_secs(5)), "{huge}");
        }
        response.headers.insert("retry-after", HeaderValue::from_static("-inf"));
        assert_eq!(client.retry_after(&response), Some(Duration::ZERO));
        response.headers.insert("retry-after", HeaderValue::from_static("NaN"));
        assert_eq!(client.retry_after(&response), None);
    }

    #[tokio::test]
    async fn plain_http_off_this_machine_is_refused_before_sending() {
        let client = HttpClient::new("test", HttpSettings::default(), Redactor::default()).unwrap();
        let request = HttpRequest::new(reqwest::Method::GET, url::Url::parse("http://vendor.example/x").unwrap());
        let error = client.send(request).await.unwrap_err();
        assert!(matches!(error, HttpError::InsecureUrl { ref host, .. } if host == "vendor.example"), "{error}");
        assert_eq!(client.counters().requests.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn sensitive_headers_do_not_print() {
        let request = HttpRequest::new(reqwest::Method::GET, url::Url::parse("http://127.0.0.1/x").unwrap())
            .sensitive_header("authorization", "Basic c2VjcmV0");
        assert!(!format!("{request:?}").contains("c2VjcmV0"));
    }
}
