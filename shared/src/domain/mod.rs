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

tokio::task_local! {
    /// The operation id the HTTP API assigned before it started this run
    /// (docs/architecture.md#the-http-api): taken by the first [`new_operation_id`] of the run.
    static ASSIGNED_OPERATION_ID: std::cell::RefCell<Option<String>>;
}

/// A new operation id: UUIDv7, so ids sort by creation time; or, once, the id assigned to
/// this run by [`with_assigned_operation_id`]. Every workflow names its operation here, so an
/// id the API answered with before the run began is the one the trail records, without a
/// field in any workflow's request. The store refuses an id already taken
/// (`AuditStore::create_operation`: `AlreadyExists`).
pub fn new_operation_id() -> String {
    let assigned = ASSIGNED_OPERATION_ID.try_with(|assigned| assigned.borrow_mut().take()).ok().flatten();
    assigned.unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Run `run` with `operation_id` as the id its first new operation takes.
pub async fn with_assigned_operation_id<F: std::future::Future>(operation_id: String, run: F) -> F::Output {
    ASSIGNED_OPERATION_ID.scope(std::cell::RefCell::new(Some(operation_id)), run).await
}

/// `initiated_by` of a run someone asked for on behalf of someone else: the authenticated
/// principal first, the name labelled (docs/architecture.md#who-is-asking).
pub fn on_behalf_of_initiator(principal: &str, name: &str) -> String {
    format!("{principal}{ON_BEHALF_OF}{name})")
}

const ON_BEHALF_OF: &str = " (on behalf of ";

/// The name an `initiated_by` says the run was on behalf of, if it says so.
pub fn on_behalf_of(initiated_by: &str) -> Option<&str> {
    initiated_by.split_once(ON_BEHALF_OF).and_then(|(_, name)| name.strip_suffix(')'))
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
