//! The AWS SDK configuration every AWS client (DynamoDB, Secrets Manager) is built from,
//! with explicit timeouts. The SDK's defaults have a connect timeout but no operation
//! timeout: a DynamoDB endpoint that accepts a connection and never answers would hold a
//! run until the Lambda's own 15-minute limit. Here every call has a bound
//! (docs/reliability.md#aws-sdk-timeouts).
//!
//! | Name | Meaning | Default |
//! |---|---|---|
//! | `OFFRAMP_AWS_CONNECT_TIMEOUT_SECONDS` | establishing a connection | `3` |
//! | `OFFRAMP_AWS_ATTEMPT_TIMEOUT_SECONDS` | one attempt of a call (the SDK retries a timed-out attempt) | `10` |
//! | `OFFRAMP_AWS_OPERATION_TIMEOUT_SECONDS` | a whole call, every retry included | `30` |

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};

use crate::config::ConfigSource;
use crate::error::OfframpError;

/// The timeouts of every AWS SDK call, from the settings in the module table.
pub fn timeouts(source: &ConfigSource) -> Result<TimeoutConfig, OfframpError> {
    let seconds = |key: &str, default: f64| -> Result<Duration, OfframpError> {
        let value: f64 = source.parsed(key, default)?;
        Duration::try_from_secs_f64(value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| OfframpError::configuration(format!("{key} must be a positive number of seconds")))
    };
    Ok(TimeoutConfig::builder()
        .connect_timeout(seconds("OFFRAMP_AWS_CONNECT_TIMEOUT_SECONDS", 3.0)?)
        .operation_attempt_timeout(seconds("OFFRAMP_AWS_ATTEMPT_TIMEOUT_SECONDS", 10.0)?)
        .operation_timeout(seconds("OFFRAMP_AWS_OPERATION_TIMEOUT_SECONDS", 30.0)?)
        .build())
}

/// The SDK loader with these timeouts; it honours `AWS_ENDPOINT_URL`, `AWS_REGION` and
/// the usual credential chain. Where the settings source itself names the endpoint, the
/// region or a key pair, those win: the source is the process environment in production,
/// and a test (or an embedding program) can hand one process several of them.
pub fn loader(source: &ConfigSource) -> Result<ConfigLoader, OfframpError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts(source)?);
    if let Some(endpoint) = source.get("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = source.get("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let (Some(id), Some(secret)) = (source.get("AWS_ACCESS_KEY_ID"), source.get("AWS_SECRET_ACCESS_KEY")) {
        let token = source.get("AWS_SESSION_TOKEN").map(str::to_string);
        let credentials = aws_sdk_secretsmanager::config::Credentials::new(id, secret, token, None, "offramp-settings");
        loader = loader.credentials_provider(credentials);
    }
    Ok(loader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_a_connect_attempt_and_operation_timeout() {
        let defaults = timeouts(&ConfigSource::default()).unwrap();
        assert_eq!(defaults.connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(defaults.operation_attempt_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(defaults.operation_timeout(), Some(Duration::from_secs(30)));
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            let source = ConfigSource::from_pairs([("OFFRAMP_AWS_OPERATION_TIMEOUT_SECONDS", bad)]);
            assert!(timeouts(&source).is_err(), "{bad}");
        }
    }

    /// A DynamoDB endpoint that accepts connections and never answers: the call fails on
    /// the configured operation timeout instead of hanging.
    #[tokio::test]
    async fn a_silent_endpoint_fails_the_call_within_the_operation_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let source = ConfigSource::from_pairs([
            ("OFFRAMP_AWS_ATTEMPT_TIMEOUT_SECONDS", "0.2"),
            ("OFFRAMP_AWS_OPERATION_TIMEOUT_SECONDS", "0.5"),
        ]);
        let credentials = aws_sdk_dynamodb::config::Credentials::new("AKIDTEST", "secret", None, None, "test");
        let config = loader(&source)
            .unwrap()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(10), client.list_tables().send()).await;
        let error = outcome.expect("the SDK's own timeout must end the call").expect_err("nothing answers");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(format!("{error:?}").to_ascii_lowercase().contains("timeout"), "{error:?}");
    }
}
