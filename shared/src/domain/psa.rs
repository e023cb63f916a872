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
    /// The company's status as the PSA names it (ConnectWise company status name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
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

impl ConfigStatus {
    /// The status as a report shows it: the vendor's name in lower case ("active").
    pub fn label(&self) -> String {
        self.name.to_lowercase()
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
