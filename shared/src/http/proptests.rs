//! Property tests: whatever a vendor sends back, the HTTP layer neither panics nor reads
//! without bound, and every outcome is typed. Arbitrary `Retry-After` values and JSON go
//! through the parsers the layer uses; arbitrary status, `Retry-After` and body
//! combinations go through [`HttpClient::send`] against a loopback server speaking raw HTTP.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::limits::{self, JsonError, MAX_JSON_DEPTH};
use super::{HttpClient, HttpError, HttpRequest, HttpSettings, Redactor};

/// What `Retry-After` may say: numbers of every shape, dates, garbage, any text.
fn retry_after_values() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "[-+]?(inf|infinity|nan|NaN|[0-9]{1,400})(\\.[0-9]{0,20})?(e[-+]?[0-9]{1,5})?",
        "(Mon|Sun), [0-9]{1,2} (Jan|Dec) [0-9]{1,6} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|\\+9999|-0000)",
        "[ -~]{0,60}",
        any::<String>(),
    ]
}

/// A runner of `cases` cases from a fixed seed: a failure is the same on every rerun.
fn runner(cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

#[test]
fn any_retry_after_is_a_bounded_wait_or_nothing() {
    let cap = Duration::from_secs(120);
    let now = chrono::Utc::now();
    runner(4096)
        .run(&retry_after_values(), |value| {
            if let Some(wait) = limits::retry_after_wait(&value, cap, now) {
                prop_assert!(wait <= cap, "{value:?} gave {wait:?}");
            }
            Ok(())
        })
        .unwrap();
}

/// JSON-ish bytes: random bytes, or brackets nested to a random depth around a value.
fn json_bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (0usize..200, "[\\[{\"a:,1\\]}\\\\ ]{0,40}")
            .prop_map(|(depth, middle)| { format!("{}{middle}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes() }),
    ]
}

#[test]
fn any_body_parses_to_json_or_a_typed_error() {
    runner(4096)
        .run(&json_bodies(), |body| {
            match limits::parse_json(&body) {
                Ok(_) => prop_assert!(!limits::nesting_exceeds(&body, MAX_JSON_DEPTH)),
                Err(JsonError::TooDeep { limit }) => prop_assert_eq!(limit, MAX_JSON_DEPTH),
                Err(JsonError::Syntax(_)) => {}
            }
            Ok(())
        })
        .unwrap();
}

/// One vendor answer: status, `Retry-After` (header-safe text), body, and whether the body
/// is announced by `Content-Length` or sent chunked.
#[derive(Clone)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
    chunked: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (status, retry_after, chunked) = (self.status, &self.retry_after, self.chunked);
        write!(f, "HTTP {status}, Retry-After {retry_after:?}, {} body bytes (chunked {chunked})", self.body.len())
    }
}

fn answers() -> impl Strategy<Value = Answer> {
    let header_safe = retry_after_values().prop_map(|v| v.replace(|c: char| !(' '..='~').contains(&c), ""));
    (
        (200u16..600).prop_filter("204 and 304 have no body by definition", |s| *s != 204 && *s != 304),
        proptest::option::of(header_safe),
        proptest::collection::vec(any::<u8>(), 0..3000),
        any::<bool>(),
    )
        .prop_map(|(status, retry_after, body, chunked)| Answer { status, retry_after, body, chunked })
}

/// A loopback server that gives every connection `answer` and closes it; it redirects to
/// `127.0.0.1:9` (never listened to: the client must not go there).
async fn serve(answer: Answer) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/list", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = vec![0u8; 8192];
            let _ = stream.read(&mut head).await;
            let mut response = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", answer.status);
            if let Some(value) = &answer.retry_after {
                response.push_str(&format!("retry-after: {value}\r\n"));
            }
            if (300..400).contains(&answer.status) {
                response.push_str("location: http://127.0.0.1:9/elsewhere?token=abc\r\n");
            }
            let mut bytes = Vec::new();
            if answer.chunked {
                response.push_str("transfer-encoding: chunked\r\n\r\n");
                bytes.extend_from_slice(response.as_bytes());
                for chunk in answer.body.chunks(700) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
            } else {
                response.push_str(&format!("content-length: {}\r\n\r\n", answer.body.len()));
                bytes.extend_from_slice(response.as_bytes());
                bytes.extend_from_slice(&answer.body);
            }
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
    });
    url
}

const BODY_CAP: usize = 1024;

#[test]
fn any_status_retry_after_and_body_is_a_response_or_a_typed_error() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let settings = HttpSettings {
        max_retries: 1,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        max_retry_after: Duration::from_millis(5),
        max_body_bytes: BODY_CAP,
        request_timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    };
    let client = HttpClient::new("proptest", settings, Redactor::default()).unwrap();
    // How many cases ended each way: every way must have been seen, or the run proved little.
    let seen = std::cell::RefCell::new([0u32; 3]);
    runner(128)
        .run(&answers(), |answer| {
            let outcome = runtime.block_on(async {
                let url = serve(answer.clone()).await;
                client.send(HttpRequest::new(reqwest::Method::GET, url)).await
            });
            match outcome {
                Ok(response) => {
                    seen.borrow_mut()[0] += 1;
                    prop_assert!(!(300..400).contains(&answer.status), "a redirect came back as a response");
                    prop_assert!(response.body.len() <= BODY_CAP, "{answer:?}: the whole body was read");
                    prop_assert_eq!(response.status, answer.status);
                    prop_assert_eq!(&response.body, &answer.body);
                }
                Err(HttpError::Redirected { status, target, .. }) => {
                    seen.borrow_mut()[1] += 1;
                    prop_assert_eq!(status, answer.status);
                    prop_assert_eq!(target, "127.0.0.1:9");
                }
                Err(HttpError::BodyTooLarge { limit, .. }) => {
                    seen.borrow_mut()[2] += 1;
                    prop_assert_eq!(limit, BODY_CAP);
                    prop_assert!(answer.body.len() > BODY_CAP);
                }
                Err(other) => prop_assert!(false, "{answer:?} gave {other}"),
            }
            Ok(())
        })
        .unwrap();
    let [responses, redirects, too_large] = *seen.borrow();
    assert!(responses > 10 && redirects > 10 && too_large > 10, "{responses} {redirects} {too_large}");
}
