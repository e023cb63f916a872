//! A documentation platform's records (IT Glue) as the organization deletion workflow
//! (workflow 002, docs/workflows.md#002-it-glue-organization-deletion) needs them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An IT Glue organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// IT Glue `data.id` (a string in JSON:API).
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_name: Option<String>,
    /// `organization-status-name`, e.g. `Active`, `Inactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `organization-type-name`, e.g. `Customer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_type: Option<String>,
    /// The PSA company this organization is synced with (`psa-id`), when IT Glue knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psa_id: Option<String>,
    /// `psa-integration-type` (`manage`, `autotask`, `halo`…), when IT Glue knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psa_integration: Option<String>,
}

/// What depends on an organization: counts per kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyCounts {
    /// Configurations, archived ones included.
    pub configurations: u64,
    pub documents: u64,
    /// Flexible assets per flexible asset type name.
    pub flexible_assets: BTreeMap<String, u64>,
    pub passwords: u64,
    pub contacts: u64,
    pub locations: u64,
    /// Kinds that could not be counted (an endpoint the account cannot read, say), with why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown: BTreeMap<String, String>,
}

impl DependencyCounts {
    pub fn flexible_assets_total(&self) -> u64 {
        self.flexible_assets.values().sum()
    }

    /// Anything at all, or anything that could not be counted (which must count as "maybe").
    pub fn any(&self) -> bool {
        self.configurations
            + self.documents
            + self.flexible_assets_total()
            + self.passwords
            + self.contacts
            + self.locations
            > 0
            || !self.unknown.is_empty()
    }
}

/// An IT Glue export of one organization (the only way back after a deletion).
///
/// Its `download_url` is a bearer link to the whole organization's data: it is read once,
/// to copy the export into the archive, and is never serialized (reports, audit records,
/// idempotency replays) nor printed by `Debug` (docs/workflows.md#002-export-archive).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub id: String,
    pub organization_id: String,
    /// The platform's status text, e.g. `pending`, `processing`, `completed`, `failed`.
    pub status: String,
    /// Where the finished export can be downloaded, once it is ready. Never serialized.
    #[serde(default, skip_serializing)]
    pub download_url: Option<String>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("status", &self.status)
            .field("download_url", &self.download_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where an export was copied before its organization was deleted: what the audit trail
/// records instead of the vendor's link (docs/workflows.md#002-export-archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedExport {
    /// `s3` or `local`.
    pub store: String,
    /// The S3 bucket, or the local archive directory.
    pub bucket: String,
    /// The object key (S3) or the file's path below the directory.
    pub key: String,
    /// S3's version id (the bucket is versioned); `None` in a local directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the bytes stored, hex.
    pub sha256: String,
    pub size: u64,
    /// Object Lock retention (governance mode) until this time, RFC 3339; `None` when the
    /// store has no lock (a local directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
}

/// What one archived export is stored under, and its bytes.
#[derive(Clone)]
pub struct ExportObject {
    pub organization_id: String,
    pub export_id: String,
    pub operation_id: String,
    pub bytes: Vec<u8>,
}

impl ExportObject {
    /// `itglue/{organization id}/{operation id}/export-{export id}.zip`: one object per
    /// deletion, never overwritten (a versioned bucket keeps even a second write).
    pub fn key(&self) -> String {
        format!("itglue/{}/{}/export-{}.zip", self.organization_id, self.operation_id, self.export_id)
    }

    pub fn sha256(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&self.bytes))
    }
}

/// Workflow 002's policy on the organization's linked PSA company
/// (docs/workflows.md#002-psa-policy): global (`OFFRAMP_ITGLUE_PSA_POLICY`, or the setting
/// `itglue_psa_policy` for `global`) and per organization (the same setting for its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItGluePsaPolicy {
    /// The organization must be linked to a PSA company, and that company offboarded.
    RequireOffboardedPsaCompany,
    /// A linked PSA company must be offboarded; an organization linked to none may go.
    #[default]
    AllowUnlinked,
    /// The PSA is not consulted (and need not be configured).
    Off,
}

impl ItGluePsaPolicy {
    pub const NAMES: &'static str = "require_offboarded_psa_company, allow_unlinked or off";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequireOffboardedPsaCompany => "require_offboarded_psa_company",
            Self::AllowUnlinked => "allow_unlinked",
            Self::Off => "off",
        }
    }
}

impl std::str::FromStr for ItGluePsaPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "require_offboarded_psa_company" => Ok(Self::RequireOffboardedPsaCompany),
            "allow_unlinked" => Ok(Self::AllowUnlinked),
            "off" => Ok(Self::Off),
            other => Err(format!("'{other}' is not an IT Glue PSA policy: expected {}", Self::NAMES)),
        }
    }
}

impl Export {
    pub fn is_done(&self) -> bool {
        matches!(self.status.to_ascii_lowercase().as_str(), "completed" | "complete" | "done" | "succeeded")
    }

    pub fn has_failed(&self) -> bool {
        matches!(self.status.to_ascii_lowercase().as_str(), "failed" | "error" | "errored" | "cancelled")
    }
}
