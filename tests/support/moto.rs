//! A shared moto server (local AWS) for integration tests.
//!
//! Tests run through `scripts/with-moto.sh` (or `make test`), which starts moto
//! and exports its address as `OFFRAMP_TEST_MOTO_URL`. All tests share that one
//! server, so each test works in its own table or secret: see [`unique_name`].

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};

/// The variable `scripts/with-moto.sh` sets to moto's address.
pub const MOTO_URL_VAR: &str = "OFFRAMP_TEST_MOTO_URL";

/// moto's address, e.g. `http://127.0.0.1:40123`.
///
/// # Panics
/// When the tests were not started through `scripts/with-moto.sh`.
pub fn moto_url() -> String {
    match std::env::var(MOTO_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{MOTO_URL_VAR} is not set: these tests need a moto server; \
             run through scripts/with-moto.sh or make test \
             (e.g. scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^audit_stores::/)')"
        ),
    }
}

/// AWS configuration that talks to moto with static dummy credentials, whatever
/// the environment says (a developer's real profile must never be used here).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_url())
        .credentials_provider(Credentials::new("test", "test", None, None, "offramp-tests"))
        .load()
        .await
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws_config().await)
}

pub async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_config().await)
}

/// A name no other test uses on the shared moto: `<prefix>-<uuid>`. Valid as a
/// DynamoDB table name and as a Secrets Manager secret name.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A fresh DynamoDB table name for one test.
pub fn unique_table_name() -> String {
    unique_name("offramp-audit-test")
}

/// A fresh secret name for one test.
pub fn unique_secret_name() -> String {
    unique_name("offramp/test")
}

pub async fn s3_client() -> aws_sdk_s3::Client {
    // moto serves buckets by path (`/bucket/key`), not as `bucket.127.0.0.1` host names.
    let config = aws_sdk_s3::config::Builder::from(&aws_config().await).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A symmetric KMS key on moto; returns its ARN. Sent as KMS's JSON protocol directly
/// (moto does not check signatures; the Authorization header only names the service), so
/// the tests need no KMS SDK crate for one call.
pub async fn create_kms_key(description: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(moto_url())
        .header("x-amz-target", "TrentService.CreateKey")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(serde_json::json!({ "Description": description }).to_string())
        .send()
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("CreateKey answers JSON");
    answer["KeyMetadata"]["Arn"].as_str().unwrap_or_else(|| panic!("CreateKey: {answer}")).to_string()
}
