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
    /// The company's contracts, when they were read (only for the contract criterion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contracts: Option<ContractSummary>,
}

/// A company's contracts (ConnectWise agreements, Autotask contracts, HaloPSA client
/// contracts) as far as "has every contract ended?" needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractSummary {
    pub total: u32,
    /// Contracts still running today: not cancelled, and without an end date or ending today or later.
    pub current: u32,
    /// The latest end date among the contracts that ended (ISO date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_end: Option<chrono::NaiveDate>,
}

impl ContractSummary {
    /// Summarise contracts given as (end date, cancelled), as of `today`.
    pub fn of(
        contracts: impl IntoIterator<Item = (Option<chrono::NaiveDate>, bool)>,
        today: chrono::NaiveDate,
    ) -> Self {
        let mut summary = ContractSummary::default();
        for (end, cancelled) in contracts {
            summary.total += 1;
            let ended = cancelled || end.is_some_and(|end| end < today);
            if ended {
                if let Some(end) = end {
                    summary.last_end = Some(summary.last_end.map_or(end, |last| last.max(end)));
                }
            } else {
                summary.current += 1;
            }
        }
        summary
    }

    /// Every contract has ended (and there was at least one).
    pub fn all_ended(&self) -> bool {
        self.total > 0 && self.current == 0
    }
}

/// A vendor date or date-time ("2026-06-30", "2026-06-30T00:00:00", "…Z") as a date.
pub fn parse_vendor_date(text: &str) -> Option<chrono::NaiveDate> {
    let text = text.trim();
    let date = text.get(..10)?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

/// What makes a company "offboarded" (workflow 000 leaves it to the operator: status, tag,
/// contract end date; docs/workflows.md#000-configuration-deactivation).
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
    /// Every contract of the company has ended (at least one contract, none current).
    #[serde(default)]
    pub contract_ended: bool,
}

impl OffboardedCriteria {
    pub fn is_empty(&self) -> bool {
        !self.inactive && !self.contract_ended && self.statuses.is_empty() && self.categories.is_empty()
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
        let contracts_match = self.contract_ended && company.contracts.as_ref().is_some_and(ContractSummary::all_ended);
        status_matches || inactive_matches || category_matches || contracts_match
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
        if self.contract_ended {
            parts.push("every contract ended".to_string());
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
    /// The configuration's contact (ConnectWise `contact`, Autotask `contactID`); HaloPSA
    /// assets have no documented contact field, so always `None` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(text: &str) -> NaiveDate {
        parse_vendor_date(text).unwrap()
    }

    #[test]
    fn vendor_dates_of_every_shape_are_read() {
        assert_eq!(day("2026-06-30"), day("2026-06-30T00:00:00Z"));
        assert_eq!(day("2026-06-30T00:00:00"), NaiveDate::from_ymd_opt(2026, 6, 30).unwrap());
        assert_eq!(parse_vendor_date("30/06/2026"), None);
    }

    #[test]
    fn every_contract_must_have_ended_and_there_must_be_one() {
        let today = day("2026-11-22");
        let ended = ContractSummary::of([(Some(day("2026-06-30")), false), (None, true)], today);
        assert!(ended.all_ended());
        assert_eq!(ended.last_end, Some(day("2026-06-30")));
        let running = ContractSummary::of([(Some(day("2026-06-30")), false), (Some(day("2026-11-22")), false)], today);
        assert!(!running.all_ended(), "a contract ending today is still current");
        assert!(!ContractSummary::of([(None, false)], today).all_ended(), "no end date: current");
        assert!(!ContractSummary::of([], today).all_ended(), "no contracts says nothing");
    }

    #[test]
    fn a_company_is_offboarded_when_any_criterion_matches() {
        let company = Company {
            id: "1".into(),
            name: "Acme".into(),
            identifier: None,
            status: Some("Active".into()),
            inactive: Some(false),
            categories: vec!["Cancellation".into()],
            contracts: None,
        };
        let none = OffboardedCriteria::default();
        assert!(none.is_empty() && !none.matches(&company));
        let by_category = OffboardedCriteria { categories: vec!["cancellation".into()], ..Default::default() };
        assert!(by_category.matches(&company));
        let by_inactive = OffboardedCriteria { inactive: true, ..Default::default() };
        assert!(!by_inactive.matches(&company));
        let by_contract = OffboardedCriteria { contract_ended: true, ..Default::default() };
        assert!(!by_contract.matches(&company), "contracts not read: no match");
        let ended =
            Company { contracts: Some(ContractSummary { total: 2, current: 0, last_end: None }), ..company.clone() };
        assert!(by_contract.matches(&ended));
        assert_eq!(
            OffboardedCriteria {
                statuses: vec!["Offboarded".into()],
                inactive: true,
                contract_ended: true,
                ..Default::default()
            }
            .describe(),
            "status in [Offboarded] or inactive in the PSA or every contract ended"
        );
    }
}
