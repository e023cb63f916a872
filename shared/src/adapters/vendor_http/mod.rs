//! The HTTP/JSON plumbing every vendor client (ConnectWise, Autotask, HaloPSA, IT Glue)
//! shares, written once: URLs under the vendor's base, credentials on every request,
//! sending through the shared HTTP layer ([`crate::http`]: timeouts, limits, retries,
//! redaction), one classification of refusals ([`refusal_kind`]), one pager ([`Pager`]),
//! and field readers ([`Fields`]).
//!
//! A vendor client supplies only what differs: its credentials ([`Authorize`]), a function
//! reading its error bodies, and how its lists page.

mod fields;
mod paging;
mod refusal;
mod rotating;

pub(crate) use fields::{
    Fields, exactly_named, flag_state, holds, id_text, positive_id, status_of, with_trailing_slash,
};
pub(crate) use paging::{NextPage, PageSeen, Pager, Rows};
pub(crate) use refusal::{Access, ErrorBody, Refusal, RefusalKind, VendorError, refusal_kind};
pub(crate) use rotating::{RotatingHeaders, Values as CredentialValues};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::Value;

use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, Retry};
use crate::secret::SecretString;

/// What became of a write sent once ([`VendorHttp::write_unrepeated`]).
pub(crate) enum WriteAnswer {
    /// The vendor answered: the answer's JSON, if any.
    Answered(Option<Value>),
    /// The answer was lost (why): the write may or may not be applied.
    Lost(String),
}

/// How a vendor's credentials go on a request.
#[async_trait]
pub(crate) trait Authorize<E>: Send + Sync {
    /// `request` with credentials; `renew` after a 401 answered the ones it carried.
    async fn authorize(&self, http: &HttpClient, request: HttpRequest, renew: bool) -> Result<HttpRequest, E>;

    /// Whether a 401 is worth one more attempt with renewed credentials (OAuth tokens).
    fn renewable(&self) -> bool {
        false
    }

    /// Whether a 403 is too (credentials read from a store that rotates: an old key may
    /// be answered 403 as well as 401).
    fn renew_on_forbidden(&self) -> bool {
        false
    }
}

#[async_trait]
impl<E, A: Authorize<E>> Authorize<E> for std::sync::Arc<A> {
    async fn authorize(&self, http: &HttpClient, request: HttpRequest, renew: bool) -> Result<HttpRequest, E> {
        self.as_ref().authorize(http, request, renew).await
    }

    fn renewable(&self) -> bool {
        self.as_ref().renewable()
    }

    fn renew_on_forbidden(&self) -> bool {
        self.as_ref().renew_on_forbidden()
    }
}

/// Credentials that are the same headers on every request (API keys, Basic auth).
#[derive(Default)]
pub(crate) struct StaticHeaders {
    secret: Vec<(&'static str, SecretString)>,
    plain: Vec<(&'static str, String)>,
}

impl StaticHeaders {
    /// A credential header: marked sensitive, never printed.
    pub fn secret(mut self, name: &'static str, value: impl Into<SecretString>) -> Self {
        self.secret.push((name, value.into()));
        self
    }

    pub fn plain(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.plain.push((name, value.into()));
        self
    }

    /// What the redactor must know of the credential headers: each value, and the token
    /// after an auth scheme (`Basic …`, `Bearer …`), which may travel on its own.
    pub fn secret_forms(&self) -> impl Iterator<Item = &str> {
        self.secret.iter().flat_map(|(_, value)| {
            let value = value.expose();
            let token = value.split_once(' ').map(|(_, token)| token.trim()).filter(|t| !t.is_empty());
            std::iter::once(value).chain(token)
        })
    }
}

#[async_trait]
impl<E: Send + 'static> Authorize<E> for StaticHeaders {
    async fn authorize(&self, _: &HttpClient, mut request: HttpRequest, _: bool) -> Result<HttpRequest, E> {
        for (name, value) in &self.secret {
            request = request.sensitive_header(name, value.expose());
        }
        for (name, value) in &self.plain {
            request = request.header(name, value);
        }
        Ok(request)
    }
}

/// Where a list stands when a page arrives: the page's URL, its number (from 1) and the
/// rows of the pages before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageAt<'a> {
    pub url: &'a url::Url,
    pub number: u64,
    pub rows_so_far: u64,
}

/// One vendor's API: its base URL, credentials and error shape over a shared [`HttpClient`].
pub(crate) struct VendorHttp<E> {
    http: HttpClient,
    base: url::Url,
    /// The vendor's name in messages (`ConnectWise`).
    name: &'static str,
    /// The `Accept` header of every request.
    accept: &'static str,
    credentials: Box<dyn Authorize<E>>,
    read_error: fn(&HttpResponse) -> ErrorBody,
}

impl<E: VendorError> VendorHttp<E> {
    pub fn new(
        http: HttpClient,
        name: &'static str,
        base: url::Url,
        credentials: impl Authorize<E> + 'static,
        read_error: fn(&HttpResponse) -> ErrorBody,
    ) -> Self {
        let base = with_trailing_slash(base);
        Self { http, base, name, accept: "application/json", credentials: Box::new(credentials), read_error }
    }

    /// Send with these credentials from now on.
    pub fn with_credentials(mut self, credentials: impl Authorize<E> + 'static) -> Self {
        self.credentials = Box::new(credentials);
        self
    }

    pub fn accept(mut self, media_type: &'static str) -> Self {
        self.accept = media_type;
        self
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    /// `path` under the base, with `query` appended.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, E> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| E::configuration(format!("cannot build a {} URL for {path}: {e}", self.name)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// A request to `path` (credentials are added when it is sent).
    pub fn request(&self, method: Method, path: &str, query: &[(&str, String)]) -> Result<HttpRequest, E> {
        Ok(HttpRequest::new(method, self.url(path, query)?))
    }

    /// Send with credentials; after a 401, once more with renewed ones if they can be renewed.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, E> {
        self.send_unmapped(request).await?.map_err(E::transport)
    }

    /// Like [`Self::send`], with the HTTP layer's own error kept as it is.
    async fn send_unmapped(&self, request: HttpRequest) -> Result<Result<HttpResponse, HttpError>, E> {
        let mut renew = false;
        loop {
            let authorized = self.credentials.authorize(&self.http, request.clone(), renew).await?;
            let authorized = authorized.header("accept", self.accept);
            let response = match self.http.send(authorized).await {
                Ok(response) => response,
                Err(error) => return Ok(Err(error)),
            };
            let refused = response.status == 401 || (response.status == 403 && self.credentials.renew_on_forbidden());
            if refused && !renew && self.credentials.renewable() {
                tracing::info!(vendor = self.name, status = response.status, "credentials refused: renewing them once");
                renew = true;
                continue;
            }
            return Ok(Ok(response));
        }
    }

    /// A write that sets values, never sent blind after its answer is lost. A dropped
    /// connection or a 502–504 may come after the vendor applied the write; instead of
    /// sending it again blind, the record is read back (`read_back`), and the write is sent
    /// again, once more unrepeated, only when `applied` says the record does not show it
    /// (docs/vendors/README.md#lost-answers). At most the connection's `max_retries + 1`
    /// sends; then the write fails as a connection error. (A retrying send after the first
    /// read-back would resend an applied write whose second answer was lost as well.)
    pub async fn write_once<F, Fut>(
        &self,
        request: HttpRequest,
        what: &str,
        read_back: F,
        applied: impl Fn(&Value) -> bool,
    ) -> Result<Option<Value>, E>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>, E>>,
    {
        let sends = self.http.settings().max_retries.saturating_add(1);
        let mut lost = String::new();
        for _ in 0..sends {
            match self.write_unrepeated(request.clone(), what).await? {
                WriteAnswer::Answered(answer) => return Ok(answer),
                WriteAnswer::Lost(why) => lost = why,
            }
            tracing::warn!(vendor = self.name, what, lost = %lost, "the answer to a write was lost; reading it back");
            if let Some(record) = read_back().await?
                && applied(&record)
            {
                return Ok(Some(record));
            }
        }
        Err(E::transport(HttpError::Connection {
            vendor: self.name,
            method: request.method.to_string(),
            path: request.url.path().to_string(),
            attempts: sends,
            message: format!("{what}: every answer was lost and the record does not show the write ({lost})"),
        }))
    }

    /// A write sent once (retried only when throttled, i.e. not applied): its answer, or
    /// why the answer was lost (a dropped connection or a 502–504, after which the vendor
    /// may or may not have applied it). The caller reads back before sending it again.
    pub async fn write_unrepeated(&self, request: HttpRequest, what: &str) -> Result<WriteAnswer, E> {
        match self.send_unmapped(request.retry(Retry::OnlyWhenThrottled)).await? {
            Ok(response) if response.is_success() => Ok(WriteAnswer::Answered(response.json().ok())),
            Ok(response) if (502..=504).contains(&response.status) => {
                Ok(WriteAnswer::Lost(format!("HTTP {}", response.status)))
            }
            Ok(response) => Err(self.refusal(&response, what, Access::Write)),
            Err(error @ HttpError::Connection { .. }) => Ok(WriteAnswer::Lost(error.to_string())),
            Err(error) => Err(E::transport(error)),
        }
    }

    /// The error for a non-success answer to `what`, by the one table ([`refusal_kind`]).
    pub fn refusal(&self, response: &HttpResponse, what: &str, access: Access) -> E {
        E::refused(self.classify(response, what, access))
    }

    fn classify(&self, response: &HttpResponse, what: &str, access: Access) -> Refusal {
        let body = (self.read_error)(response);
        let message = self.http.redactor().scrub(&body.message);
        let status = response.status;
        Refusal {
            kind: refusal_kind(status, access, body.authentication),
            status,
            code: body.code,
            message: format!("{} answered HTTP {status} to {what}: {message}", self.name),
            what: what.to_string(),
        }
    }

    /// A read answered with JSON; `None` on 404.
    pub async fn read(&self, request: HttpRequest, what: &str) -> Result<Option<Value>, E> {
        let response = self.send(request).await?;
        self.read_answer(&response, what)
    }

    /// What a read's answer says: its JSON, `None` on 404, else the refusal.
    pub fn read_answer(&self, response: &HttpResponse, what: &str) -> Result<Option<Value>, E> {
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(self.refusal(response, what, Access::Read));
        }
        response.json().map(Some).map_err(|e| E::invalid_response(format!("{what}: body is not JSON: {e}")))
    }

    /// `GET path?query` answered with JSON; `None` on 404.
    pub async fn get(&self, path: &str, query: &[(&str, String)], what: &str) -> Result<Option<Value>, E> {
        self.read(self.request(Method::GET, path, query)?, what).await
    }

    /// A write; the answer's JSON when it has any (`None` for an empty or non-JSON body).
    pub async fn write(&self, request: HttpRequest, what: &str) -> Result<Option<Value>, E> {
        let response = self.send(request).await?;
        self.write_answer(&response, what)
    }

    /// What a write's answer says: its JSON when it has any, else the refusal.
    pub fn write_answer(&self, response: &HttpResponse, what: &str) -> Result<Option<Value>, E> {
        if !response.is_success() {
            return Err(self.refusal(response, what, Access::Write));
        }
        Ok(response.json().ok())
    }

    /// Every row of a list, each turned into a `T` as its page arrives (a client with tens of
    /// thousands of records never holds them all as JSON at once). `first` is the first
    /// page's request; later pages are the same request (body included) at the next URL.
    ///
    /// A 404 here is a rejection, not [`RefusalKind::NotFound`]: a list endpoint that is not
    /// there says nothing about whether the company or organization exists.
    pub async fn list<T>(
        &self,
        pager: &Pager,
        first: HttpRequest,
        what: &str,
        mut each: impl FnMut(&Value) -> Result<T, E> + Send,
    ) -> Result<Vec<T>, E> {
        let mut request = first;
        let mut out = Vec::new();
        let mut rows_so_far = 0;
        for number in 1..=paging::MAX_PAGES {
            let response = self.send(request.clone()).await?;
            let at = PageAt { url: &request.url, number, rows_so_far };
            let (rows, next) = self.page_answer(pager, at, &response, what, |row| {
                out.push(each(row)?);
                Ok(())
            })?;
            rows_so_far += rows;
            match next {
                None => return Ok(out),
                Some(next) => request.url = next,
            }
        }
        Err(E::invalid_response(format!("{what}: more than {} pages", paging::MAX_PAGES)))
    }

    /// One page of a list as it arrived at `at`: each row handed to `each`, then how many
    /// rows it had and the next page's URL (checked to stay on the vendor's origin), `None`
    /// after the last page.
    pub fn page_answer(
        &self,
        pager: &Pager,
        at: PageAt<'_>,
        response: &HttpResponse,
        what: &str,
        mut each: impl FnMut(&Value) -> Result<(), E>,
    ) -> Result<(u64, Option<url::Url>), E> {
        let invalid = |message: String| E::invalid_response(format!("{what}: {message}"));
        if !response.is_success() {
            let mut refusal = self.classify(response, what, Access::Read);
            if refusal.kind == RefusalKind::NotFound {
                refusal.kind = RefusalKind::Rejected;
            }
            return Err(E::refused(refusal));
        }
        let body = response.json().map_err(|e| invalid(format!("body is not JSON: {e}")))?;
        let rows = pager.rows.of(&body).map_err(invalid)?;
        for row in rows {
            each(row)?;
        }
        let rows_so_far = at.rows_so_far.saturating_add(rows.len() as u64);
        let page =
            PageSeen { body: &body, number: at.number, rows: rows.len(), rows_so_far, page_size: pager.page_size };
        let next = pager.next_url(at.url, response, &page).map_err(invalid)?;
        if let Some(next) = &next {
            self.check_next_page(at.url, next).map_err(invalid)?;
        }
        Ok((rows.len() as u64, next))
    }

    fn check_next_page(&self, current: &url::Url, next: &url::Url) -> Result<(), String> {
        // Credentials go with every request: never follow a link to another scheme, host or port.
        if !crate::http::origin::same_origin(&self.base, next) {
            return Err(format!(
                "next-page link points to another host ({}://{}): refused, credentials go only to {}",
                next.scheme(),
                crate::http::origin::host_of(next),
                crate::http::origin::host_of(&self.base)
            ));
        }
        if next == current {
            return Err("next-page link repeats the current page".into());
        }
        Ok(())
    }
}
