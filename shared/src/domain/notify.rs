//! Notifications and per-client settings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A message to the requester and the configured recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// E-mail addresses.
    pub to: Vec<String>,
    pub subject: String,
    /// Plain text, readable as it is.
    pub text: String,
}

/// The scope of settings that apply to every client without their own value.
pub const GLOBAL_SCOPE: &str = "*";

/// One version of one setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingRecord {
    /// PSA kind (`connectwise`, …): client ids are per PSA.
    pub psa: String,
    /// A client id, or [`GLOBAL_SCOPE`].
    pub scope: String,
    pub key: String,
    /// `None`: the key was unset (the global default applies again).
    pub value: Option<String>,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}
