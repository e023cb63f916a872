//! A vendor that sends its clients elsewhere: every request answered by a redirect, or
//! absolute URLs (page links, the Autotask zone) naming another host. Tests use them to
//! show that credentials never leave the configured host.

use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the sandbox sends its clients instead of answering.
#[derive(Default)]
pub(crate) struct Detours {
    /// `(status, Location)`: every vendor request answers this redirect.
    redirect: Mutex<Option<(u16, String)>>,
    /// `host[:port]` written into the absolute URLs the simulators return, instead of the
    /// request's `Host`.
    link_host: Mutex<Option<String>>,
}

impl Detours {
    /// The redirect every vendor request answers, if one is set.
    pub(crate) fn redirect(&self) -> Option<Response> {
        let (status, location) = self.redirect.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT), "").into_response();
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert("location", location);
        }
        Some(response)
    }

    pub(crate) fn link_host(&self) -> Option<String> {
        self.link_host.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl crate::Sandbox {
    /// Every vendor request (past the limits, before auth) answers HTTP `status` with
    /// `Location: location`, until [`Self::clear_redirect`].
    pub fn redirect_every_request(&self, status: u16, location: &str) {
        *self.shared.detours.redirect.lock().unwrap_or_else(|e| e.into_inner()) = Some((status, location.to_string()));
    }

    pub fn clear_redirect(&self) {
        *self.shared.detours.redirect.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The host (`127.0.0.1:9`, `evil.example`) the simulators write into the absolute
    /// URLs they return (ConnectWise `Link`, Autotask
    /// `nextPageUrl` and zone `url`, IT Glue `links`) instead of the request's `Host`;
    /// `None` restores the request's.
    pub fn set_link_host(&self, host: Option<&str>) {
        *self.shared.detours.link_host.lock().unwrap_or_else(|e| e.into_inner()) = host.map(str::to_string);
    }
}
