//! Bounds on what a vendor sends back: how much body we read, how deep its JSON may nest,
//! and how long a `Retry-After` may make us wait. Each is parsed without panicking on any
//! input; what is out of bounds becomes a typed error (or the cap), never a crash or an
//! unbounded buffer.

use std::time::Duration;

use serde_json::Value;

/// The largest response body read by default (list pages: ConnectWise's 1,000-record
/// pages are the largest answers Offramp asks for). A connection can set its own
/// ([`super::HttpSettings::max_body_bytes`]), a request too ([`super::HttpRequest::max_body`]).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The cap for answers that are a few fields by nature: OAuth tokens, the Autotask zone
/// lookup, a notification's acknowledgement.
pub const SMALL_BODY_BYTES: usize = 256 * 1024;

/// The deepest nesting of arrays and objects accepted in a vendor's JSON. Vendor documents
/// nest a handful of levels (IT Glue's JSON:API about six); serde_json stops at 128 on its
/// own, but every walk over a parsed value (field readers, redaction, `Debug`) recurses too,
/// so a document is refused well before that.
pub const MAX_JSON_DEPTH: usize = 64;

/// A vendor body that is not JSON we accept.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("JSON nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("{0}")]
    Syntax(#[from] serde_json::Error),
}

/// `body` as JSON, refused when it nests deeper than [`MAX_JSON_DEPTH`].
pub fn parse_json(body: &[u8]) -> Result<Value, JsonError> {
    if nesting_exceeds(body, MAX_JSON_DEPTH) {
        return Err(JsonError::TooDeep { limit: MAX_JSON_DEPTH });
    }
    Ok(serde_json::from_slice(body)?)
}

/// Whether the arrays and objects of `body` nest deeper than `limit`, brackets inside
/// strings aside. One pass, no allocation; malformed JSON is left to the parser.
pub fn nesting_exceeds(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The wait a `Retry-After` value asks for (seconds, or an HTTP date), at most `cap`;
/// `None` when it says nothing usable. `inf`, `1e300` or a far date are the cap, a negative
/// number or a past date is no wait, and a NaN or garbage is `None`.
pub fn retry_after_wait(value: &str, cap: Duration, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_nan() {
            return None;
        }
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&chrono::Utc) - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(cap))
}

/// The longest a vendor's OAuth token is used, whatever its `expires_in` says (HaloPSA and
/// Entra issue tokens for about an hour, docs/vendors/halopsa.md, docs/vendors/microsoft-graph.md).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When a token the vendor says `expires_in` is renewed: `margin` early, and at most
/// [`MAX_TOKEN_LIFETIME`] after `now`. An absurd lifetime (`"expires_in": 18446744073709551615`)
/// is the cap: adding it to the clock as it is panics (found writing the `make fuzz` target
/// vendor_halo, and reproduced with it).
pub fn token_renewal(now: std::time::Instant, expires_in: Duration, margin: Duration) -> std::time::Instant {
    now + expires_in.min(MAX_TOKEN_LIFETIME).saturating_sub(margin)
}

/// Why a capped read stopped.
pub(super) enum CappedRead {
    /// More than the cap arrived (or was announced); reading stopped there.
    TooLarge,
    Transport(reqwest::Error),
}

/// The body of `response`, read chunk by chunk and abandoned as soon as it passes `limit`
/// bytes (or announces more in `Content-Length`): never buffered whole.
pub(super) async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, CappedRead> {
    if response.content_length().is_some_and(|announced| announced > limit as u64) {
        return Err(CappedRead::TooLarge);
    }
    let expected = response.content_length().unwrap_or(0).min(limit as u64) as usize;
    let mut body = Vec::with_capacity(expected.min(64 * 1024));
    while let Some(chunk) = response.chunk().await.map_err(CappedRead::Transport)? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(CappedRead::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nesting_exceeds(deep(64).as_bytes(), 64));
        assert!(nesting_exceeds(deep(65).as_bytes(), 64));
        let quoted = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(!nesting_exceeds(quoted.as_bytes(), 2));
        assert!(parse_json(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn too_deep_is_a_typed_error_and_shallow_json_parses() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(parse_json(deep.as_bytes()), Err(JsonError::TooDeep { limit: 64 })));
        assert!(matches!(parse_json(b"{\"a\": [1, {\"b\": null}]}"), Ok(Value::Object(_))));
        assert!(matches!(parse_json(b"{\"a\": "), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn an_absurd_token_lifetime_is_capped_not_a_clock_overflow() {
        let now = std::time::Instant::now();
        let margin = Duration::from_secs(60);
        assert_eq!(token_renewal(now, Duration::from_secs(3600), margin), now + Duration::from_secs(3540));
        assert_eq!(token_renewal(now, Duration::MAX, margin), now + MAX_TOKEN_LIFETIME - margin);
        assert_eq!(token_renewal(now, Duration::from_secs(u64::MAX), margin), now + MAX_TOKEN_LIFETIME - margin);
        assert_eq!(token_renewal(now, Duration::ZERO, margin), now, "an expired token is renewed at once");
    }

    #[test]
    fn retry_after_dates_are_measured_from_now_and_capped() {
        let now = chrono::DateTime::parse_from_rfc2822("Sun, 06 Dec 2026 10:00:00 GMT").unwrap().to_utc();
        let cap = Duration::from_secs(120);
        assert_eq!(retry_after_wait("Sun, 06 Dec 2026 10:00:30 GMT", cap, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after_wait("Sun, 06 Dec 2026 09:00:00 GMT", cap, now), Some(Duration::ZERO));
        assert_eq!(retry_after_wait("Fri, 31 Dec 9999 23:59:59 GMT", cap, now), Some(cap));
        assert_eq!(retry_after_wait(" 1.5 ", cap, now), Some(Duration::from_millis(1500)));
    }
}
