//! Domain types shared by every workflow and adapter.

pub mod approval;
pub mod audit;
pub mod contact;
pub mod docs;
pub mod lease;
pub mod names;
pub mod notify;
pub mod psa;

pub use approval::*;
pub use audit::*;
pub use contact::*;
pub use docs::*;
pub use lease::*;
pub use names::*;
pub use notify::*;
pub use psa::*;

/// A new operation id: UUIDv7, so ids sort by creation time.
pub fn new_operation_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now, in UTC, at millisecond precision (what every record and report carries).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// ISO 8601 / RFC 3339 with a `Z`, as the seeds show timestamps.
pub fn iso8601(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
