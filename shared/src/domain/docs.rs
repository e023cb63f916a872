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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub id: String,
    pub organization_id: String,
    /// The platform's status text, e.g. `pending`, `processing`, `completed`, `failed`.
    pub status: String,
    /// Where the finished export can be downloaded, once it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

impl Export {
    pub fn is_done(&self) -> bool {
        matches!(self.status.to_ascii_lowercase().as_str(), "completed" | "complete" | "done" | "succeeded")
    }

    pub fn has_failed(&self) -> bool {
        matches!(self.status.to_ascii_lowercase().as_str(), "failed" | "error" | "errored" | "cancelled")
    }
}
