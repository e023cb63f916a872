//! Where the evidence report of an operation is kept (docs/evidence.md): S3 when deployed
//! (the export archive's bucket, under `evidence/`), a local directory beside the SQLite
//! trail on a laptop. The report is rendered from the audit trail, so a lost copy can
//! always be rendered again (`offramp audit report`); the stored copy is the one that was
//! linked from the ticket.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::EvidenceError;

/// Where a stored evidence report is, and what was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceLocation {
    /// `s3` or `local`.
    pub store: String,
    /// `s3://bucket/evidence/<operation>.html`, or the file's path.
    pub location: String,
    /// S3's version id (the bucket is versioned); `None` in a local directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the bytes stored, hex.
    pub sha256: String,
    pub size: u64,
}

#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Store `html` as the evidence report of `operation_id` (a UUID; anything else is
    /// [`EvidenceError::InvalidOperationId`] and nothing is written). Storing again keeps the
    /// newest as the report (S3 keeps the older versions too).
    async fn put(&self, operation_id: &str, html: &str) -> Result<EvidenceLocation, EvidenceError>;

    /// The stored report of `operation_id`, or `None` when none was stored.
    async fn get(&self, operation_id: &str) -> Result<Option<String>, EvidenceError>;
}

/// The object name of an operation's report: `evidence/<uuid>.html`. The id is checked to
/// be a UUID first, so no id can name a path outside the prefix.
pub fn evidence_key(operation_id: &str) -> Result<String, EvidenceError> {
    let id = uuid::Uuid::parse_str(operation_id)
        .map_err(|_| EvidenceError::InvalidOperationId { operation_id: operation_id.chars().take(80).collect() })?;
    Ok(format!("{EVIDENCE_PREFIX}{}.html", id.hyphenated()))
}

/// The prefix every report is stored under (the template's policy grants exactly it).
pub const EVIDENCE_PREFIX: &str = "evidence/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_uuid_names_a_report() {
        let id = "0190c3a0-0000-7000-8000-000000000001";
        assert_eq!(evidence_key(id).unwrap(), format!("evidence/{id}.html"));
        for bad in ["../etc/passwd", "", "0190c3a0/../x", "a b"] {
            assert!(matches!(evidence_key(bad), Err(EvidenceError::InvalidOperationId { .. })), "{bad}");
        }
    }
}
