//! The export archive in S3 (the [`ExportArchive`] port), as the template creates it
//! (docs/architecture.md#export-archive): a versioned bucket with Object Lock, encrypted
//! with the stack's KMS key.
//!
//! Each export is one `PutObject` with:
//! - `x-amz-server-side-encryption: aws:kms` and, when configured, the key id
//!   (`OFFRAMP_EXPORT_KMS_KEY_ID`); the bucket's default encryption names the same key;
//! - Object Lock in GOVERNANCE mode until now + `OFFRAMP_EXPORT_RETENTION_DAYS`, set on
//!   the object itself, so the retention holds even where the bucket's default differs;
//!   governance mode lets a person with `s3:BypassGovernanceRetention` remove it on purpose;
//! - a SHA-256 checksum the SDK computes and S3 verifies on receipt (Object Lock buckets
//!   refuse a PUT without an integrity checksum), compared again with the one S3 returns.
//!
//! The answer's version id is what the audit trail records beside bucket and key.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode, ServerSideEncryption};
use base64::Engine;

use crate::domain::{self, ArchivedExport, ExportObject};
use crate::error::ArchiveError;
use crate::ports::{ExportArchive, async_trait};

/// Where and how exports are stored in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3ArchiveSettings {
    /// `OFFRAMP_EXPORT_BUCKET`.
    pub bucket: String,
    /// `OFFRAMP_EXPORT_KMS_KEY_ID`: the KMS key objects are encrypted with; `None` leaves
    /// the choice to the bucket's default encryption (still SSE-KMS).
    pub kms_key_id: Option<String>,
    /// `OFFRAMP_EXPORT_RETENTION_DAYS`: governance-mode retention of every object; 0 sets
    /// none on the object (the bucket's default retention still applies).
    pub retention_days: u32,
}

pub struct S3ExportArchive {
    client: aws_sdk_s3::Client,
    settings: S3ArchiveSettings,
}

impl S3ExportArchive {
    pub fn new(client: aws_sdk_s3::Client, settings: S3ArchiveSettings) -> Self {
        Self { client, settings }
    }

    fn failed(&self, message: impl Into<String>) -> ArchiveError {
        ArchiveError::Store { store: format!("s3://{}", self.settings.bucket), message: message.into() }
    }
}

#[async_trait]
impl ExportArchive for S3ExportArchive {
    async fn store(&self, object: &ExportObject) -> Result<ArchivedExport, ArchiveError> {
        let key = object.key();
        let sha256 = object.sha256();
        let retain_until = (self.settings.retention_days > 0)
            .then(|| domain::now() + chrono::Duration::days(i64::from(self.settings.retention_days)));
        let mut put = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(&key)
            .body(ByteStream::from(object.bytes.clone()))
            .content_type("application/zip")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .metadata("offramp-operation-id", &object.operation_id)
            .metadata("offramp-itglue-organization-id", &object.organization_id)
            .metadata("offramp-itglue-export-id", &object.export_id);
        if let Some(kms) = &self.settings.kms_key_id {
            put = put.ssekms_key_id(kms);
        }
        if let Some(until) = retain_until {
            put = put
                .object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp()));
        }
        let out = put.send().await.map_err(|e| self.failed(DisplayErrorContext(e).to_string()))?;
        // S3 verified the checksum the SDK sent; the one it answers must be ours too.
        if let Some(answered) = out.checksum_sha256() {
            let ours = base64::engine::general_purpose::STANDARD.encode(hex::decode(&sha256).unwrap_or_default());
            if answered != ours {
                return Err(self.failed(format!("S3 answered checksum {answered} for {key}, expected {ours}")));
            }
        }
        if out.server_side_encryption() != Some(&ServerSideEncryption::AwsKms) {
            return Err(self.failed(format!("{key} was not stored with SSE-KMS")));
        }
        Ok(ArchivedExport {
            store: "s3".into(),
            bucket: self.settings.bucket.clone(),
            key,
            version_id: out.version_id().map(str::to_string),
            sha256,
            size: object.bytes.len() as u64,
            retain_until: retain_until.map(domain::iso8601),
        })
    }
}
