//! What Offramp knows of a PSA's records, independent of the vendor.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which PSA an adapter talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsaKind {
    #[serde(rename = "connectwise")]
    ConnectWise,
    Autotask,
    Halo,
}

impl PsaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PsaKind::ConnectWise => "connectwise",
            PsaKind::Autotask => "autotask",
            PsaKind::Halo => "halo",
        }
    }
}

impl fmt::Display for PsaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PsaKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "connectwise" | "cw" | "manage" => Ok(PsaKind::ConnectWise),
            "autotask" => Ok(PsaKind::Autotask),
            "halo" | "halopsa" => Ok(PsaKind::Halo),
            other => Err(format!("unknown PSA '{other}' (expected connectwise, autotask or halo)")),
        }
    }
}

/// A PSA company (ConnectWise company, Autotask company, HaloPSA client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    /// ConnectWise `identifier`; absent on other PSAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The company's status as the PSA names it: the ConnectWise company status name;
    /// `Active` or `Inactive` on Autotask and HaloPSA, which have only that flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The PSA's own inactive flag, where it has one (Autotask `isActive`, HaloPSA `inactive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive: Option<bool>,
    /// Labels the MSP classifies companies by: Autotask company type and classification,
    /// ConnectWise company types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// What makes a company "offboarded" (seed 000: "status, tag, contract end date…").
/// A company is offboarded when it matches **any** configured criterion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffboardedCriteria {
    /// Company status names, compared ignoring case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    /// The company is inactive in the PSA.
    #[serde(default)]
    pub inactive: bool,
    /// Company categories (Autotask type or classification label, ConnectWise type), ignoring case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl OffboardedCriteria {
    pub fn is_empty(&self) -> bool {
        !self.inactive && self.statuses.is_empty() && self.categories.is_empty()
    }

    pub fn matches(&self, company: &Company) -> bool {
        let status_matches = company
            .status
            .as_deref()
            .is_some_and(|status| self.statuses.iter().any(|s| s.trim().eq_ignore_ascii_case(status.trim())));
        let inactive_matches = self.inactive && company.inactive == Some(true);
        let category_matches = company
            .categories
            .iter()
            .any(|category| self.categories.iter().any(|c| c.trim().eq_ignore_ascii_case(category.trim())));
        status_matches || inactive_matches || category_matches
    }

    /// For messages: "status in [Offboarded] or inactive".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.statuses.is_empty() {
            parts.push(format!("status in [{}]", self.statuses.join(", ")));
        }
        if self.inactive {
            parts.push("inactive in the PSA".to_string());
        }
        if !self.categories.is_empty() {
            parts.push(format!("category in [{}]", self.categories.join(", ")));
        }
        if parts.is_empty() { "no criteria".to_string() } else { parts.join(" or ") }
    }
}

/// Whether a configuration is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigState {
    /// In use: the workflow sets it inactive.
    Active,
    /// Already in the PSA's inactive status: skipped.
    Inactive,
    /// Closed in some other way (ConnectWise: a status with `closedFlag` other than the
    /// inactive one, e.g. "Disposed"). Listed only with `include_archived`; never changed.
    Archived,
}

/// A configuration's status: the vendor's record (id and name) and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The vendor's status record id (ConnectWise configuration status id), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The vendor's status name, e.g. "Active", "Inactive", "Disposed".
    pub name: String,
    pub state: ConfigState,
}

impl ConfigState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigState::Active => "active",
            ConfigState::Inactive => "inactive",
            ConfigState::Archived => "archived",
        }
    }
}

impl ConfigStatus {
    /// The status as a report shows it: `active`, `inactive` or `archived`, the same words
    /// on every PSA so reports compare across PSAs. The vendor's own status name (say
    /// ConnectWise "On Order") is kept in the audit trail's snapshot.
    pub fn label(&self) -> String {
        self.state.as_str().to_string()
    }
}

/// A PSA configuration item (ConnectWise configuration, Autotask CI, HaloPSA asset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    pub id: String,
    pub name: String,
    pub company_id: String,
    pub status: ConfigStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
}
