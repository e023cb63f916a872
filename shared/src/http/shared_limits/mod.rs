//! Vendor limits shared by every process of a deployment.
//!
//! A vendor counts the requests of an integration, not of a process: three Lambdas running
//! at once with a per-process limit each would send three times the ConnectWise rate and
//! spend the Autotask, HaloPSA and IT Glue windows three times. Here the limit lives in a
//! [`SharedLimitStore`] (the DynamoDB audit table when deployed, the SQLite file on a
//! laptop, [`InProcessLimitStore`] in tests) as one small document per limit, changed only
//! by compare-and-swap, and each process takes **blocks** of it so the store is not asked
//! per request:
//!
//! - a request **schedule** ([`SharedSchedule`], ConnectWise): the next free send time and
//!   the pace; a process claims the next few slots (half a second's worth) at once and
//!   sends at those times. Every slot is handed out once, so the processes together keep
//!   the pace exactly, and a 429 seen by one slows every one (the pace is in the document).
//! - a request **window** ([`SharedWindow`], Autotask per hour, HaloPSA and IT Glue per five
//!   minutes): the requests granted, grouped by when they leave the vendor's window; a
//!   process takes a few at a time, usable for a few seconds only, and each is counted as
//!   if sent at the end of that time, so a late send cannot leave the vendor's window later
//!   than counted.
//!
//! Fail safe: a slot or a grant is needed before a request goes out. When the store cannot
//! be read or written, the claim is retried with backoff for [`STORE_PATIENCE`]; after
//! that the request fails ([`HttpError::LimitStore`]) with nothing sent. Unused slots and
//! grants expire unused. Every failure mode is slower, none sends over the limit
//! (docs/reliability.md#vendor-limits-shared-by-every-process).
//!
//! Clocks: the documents hold wall-clock times (epoch microseconds) so that processes on
//! different hosts can compare them; Lambda hosts keep NTP time within milliseconds.

mod schedule;
mod store;
mod window;

pub use schedule::SharedSchedule;
pub use store::{SharedLimitError, SharedLimitState, SharedLimitStore};
pub use window::{SharedWindow, WindowRefusal};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest;
use tokio::time::Instant;

use async_trait::async_trait;

/// How long a claim keeps trying a store that fails before the request fails unsent.
pub const STORE_PATIENCE: Duration = Duration::from_secs(30);
/// The first wait after a store failure; doubled up to [`STORE_BACKOFF_MAX`].
const STORE_BACKOFF: Duration = Duration::from_millis(100);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(3);

/// The key of one shared limit: the vendor, what the limit is, and a digest of the
/// connection's scope (its base URL and account), so that two tenants never share a limit
/// and no URL or account name is written in the store.
pub fn limit_key(vendor: &str, kind: &str, scope: &str) -> String {
    let digest = sha2::Sha256::digest(scope.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{vendor}#{kind}#{hex}")
}

/// Wall-clock time in microseconds since the epoch (the documents' clock).
fn epoch_micros() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// The local instant of the wall-clock time `at_us`, given one reading of both clocks.
fn to_instant(at_us: i64, now_us: i64, now: Instant) -> Instant {
    let delta = Duration::from_micros(at_us.abs_diff(now_us));
    if at_us >= now_us { now + delta } else { now.checked_sub(delta).unwrap_or(now) }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// One attempt at changing a shared document.
enum Swap<T> {
    /// Written: what the claim got.
    Done(T),
    /// Another process wrote first: read again.
    Conflict,
}

/// Run `attempt` until it writes, retrying conflicts at once and store failures with
/// backoff for [`STORE_PATIENCE`]; the last failure when patience runs out.
async fn with_patience<T, F, Fut>(key: &str, mut attempt: F) -> Result<T, SharedLimitError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Swap<T>, SharedLimitError>>,
{
    let give_up = Instant::now() + STORE_PATIENCE;
    let mut backoff = STORE_BACKOFF;
    loop {
        match attempt().await {
            Ok(Swap::Done(value)) => return Ok(value),
            Ok(Swap::Conflict) => tokio::task::yield_now().await,
            Err(error) if Instant::now() + backoff < give_up => {
                tracing::warn!(key, error = %error, wait_ms = backoff.as_millis() as u64, "shared limit store failed: waiting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(STORE_BACKOFF_MAX);
            }
            Err(error) => return Err(error),
        }
    }
}

/// The limits of one vendor connection that every process shares.
pub struct SharedLimits {
    pub schedule: Option<SharedSchedule>,
    pub window: Option<SharedWindow>,
}

/// A [`SharedLimitStore`] in this process's memory: for tests that share limits between
/// several clients of one process without a database, and the reference the adapters are
/// tested against.
#[derive(Default)]
pub struct InProcessLimitStore {
    documents: Mutex<HashMap<String, SharedLimitState>>,
    /// Writes accepted (what a DynamoDB deployment would pay per request).
    writes: std::sync::atomic::AtomicU64,
}

impl InProcessLimitStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Conditional writes that succeeded.
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl SharedLimitStore for InProcessLimitStore {
    async fn read_limit(&self, key: &str) -> Result<Option<SharedLimitState>, SharedLimitError> {
        Ok(self.documents.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned())
    }

    async fn swap_limit(&self, key: &str, expected: Option<u64>, document: &str) -> Result<bool, SharedLimitError> {
        let mut documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        let stored = documents.get(key).map(|state| state.version);
        if stored != expected {
            return Ok(false);
        }
        let version = expected.unwrap_or(0) + 1;
        documents.insert(key.to_string(), SharedLimitState { version, document: document.to_string() });
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_vendor_and_limit_but_not_the_scope() {
        let key = limit_key("connectwise", "rate", "https://na.myconnectwise.net|acme");
        assert!(key.starts_with("connectwise#rate#"), "{key}");
        assert!(!key.contains("acme") && !key.contains("myconnectwise"), "{key}");
        assert_ne!(key, limit_key("connectwise", "rate", "https://na.myconnectwise.net|other"));
    }

    #[tokio::test]
    async fn the_in_process_store_swaps_only_from_the_version_read() {
        let store = InProcessLimitStore::new();
        assert!(store.swap_limit("k", None, "a").await.unwrap());
        assert!(!store.swap_limit("k", None, "b").await.unwrap(), "already written");
        assert!(store.swap_limit("k", Some(1), "c").await.unwrap());
        assert!(!store.swap_limit("k", Some(1), "d").await.unwrap(), "stale version");
        assert_eq!(store.read_limit("k").await.unwrap(), Some(SharedLimitState { version: 2, document: "c".into() }));
        assert_eq!(store.writes(), 2);
    }
}
