//! The evidence store in S3 (the [`EvidenceStore`] port): the export archive's bucket,
//! under `evidence/` (docs/evidence.md#where-it-is-stored). The bucket is versioned, with
//! Object Lock, SSE-KMS and its public access blocked; a report is one `PutObject` in the
//! style of [`super::archive_s3`]: SSE-KMS with the configured key, governance retention
//! on the object, a SHA-256 checksum S3 verifies. Storing again adds a version: every
//! copy ever linked from a ticket stays.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode, ServerSideEncryption};
use sha2::{Digest, Sha256};

use crate::domain;
use crate::error::EvidenceError;
use crate::ports::{EvidenceLocation, EvidenceStore, async_trait, evidence_key};

/// Where reports go in S3: `OFFRAMP_EVIDENCE_BUCKET`, `OFFRAMP_EVIDENCE_KMS_KEY_ID`,
/// `OFFRAMP_EVIDENCE_RETENTION_DAYS` (the template sets the export bucket, its key and
/// its retention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3EvidenceSettings {
    pub bucket: String,
    pub kms_key_id: Option<String>,
    /// 0 sets no retention on the object (the bucket's default still applies).
    pub retention_days: u32,
}

pub struct S3Evidence {
    client: aws_sdk_s3::Client,
    settings: S3EvidenceSettings,
}

impl S3Evidence {
    pub fn new(client: aws_sdk_s3::Client, settings: S3EvidenceSettings) -> Self {
        Self { client, settings }
    }

    fn failed(&self, message: impl Into<String>) -> EvidenceError {
        EvidenceError::Store { store: format!("s3://{}", self.settings.bucket), message: message.into() }
    }
}

#[async_trait]
impl EvidenceStore for S3Evidence {
    async fn put(&self, operation_id: &str, html: &str) -> Result<EvidenceLocation, EvidenceError> {
        let key = evidence_key(operation_id)?;
        let mut put = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(&key)
            .body(ByteStream::from(html.as_bytes().to_vec()))
            .content_type("text/html; charset=utf-8")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .metadata("offramp-operation-id", operation_id);
        if let Some(kms) = &self.settings.kms_key_id {
            put = put.ssekms_key_id(kms);
        }
        if self.settings.retention_days > 0 {
            let until = domain::now() + chrono::Duration::days(i64::from(self.settings.retention_days));
            put = put
                .object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp()));
        }
        let out = put.send().await.map_err(|e| self.failed(format!("{key}: {}", DisplayErrorContext(e))))?;
        if out.server_side_encryption() != Some(&ServerSideEncryption::AwsKms) {
            return Err(self.failed(format!("{key} was not stored with SSE-KMS")));
        }
        Ok(EvidenceLocation {
            store: "s3".into(),
            location: format!("s3://{}/{key}", self.settings.bucket),
            version_id: out.version_id().map(str::to_string),
            sha256: hex::encode(Sha256::digest(html.as_bytes())),
            size: html.len() as u64,
        })
    }

    async fn get(&self, operation_id: &str) -> Result<Option<String>, EvidenceError> {
        let key = evidence_key(operation_id)?;
        let answer = self.client.get_object().bucket(&self.settings.bucket).key(&key).send().await;
        let out = match answer {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.failed(format!("{key}: {}", DisplayErrorContext(e)))),
        };
        let bytes = out.body.collect().await.map_err(|e| self.failed(format!("{key}: {e}")))?.into_bytes();
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| self.failed(format!("{key} is not UTF-8 text")))
    }
}
