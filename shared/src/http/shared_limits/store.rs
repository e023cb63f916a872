//! The port of the shared vendor limits and its error. They live in the HTTP layer, which
//! is what counts requests against them; `ports` and `error` re-export them, so adapters
//! name them like every other port.

use async_trait::async_trait;

/// Errors from a shared-limit store (`ports::SharedLimitStore`).
#[derive(Debug, thiserror::Error)]
pub enum SharedLimitError {
    /// The store could not be read or written: no request goes out on a limit it cannot count.
    #[error("shared vendor-limit store unavailable: {message}")]
    Unavailable { message: String },
}

/// One shared limit's state as stored: an opaque document and the version it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLimitState {
    /// Incremented by every successful [`SharedLimitStore::swap_limit`]; 1 for the first write.
    pub version: u64,
    /// The limit's state (JSON written by `crate::http::shared_limits`; the store never reads it).
    pub document: String,
}

/// Where every process of a deployment keeps the vendor limits they share (the ConnectWise
/// request schedule, the Autotask, HaloPSA and IT Glue request windows), so that N concurrent
/// invocations together stay within one vendor limit instead of N
/// (docs/reliability.md#vendor-limits-shared-by-every-process). The store only keeps
/// versioned documents and swaps them conditionally; what a document means is decided in
/// one place, `crate::http::shared_limits`.
#[async_trait]
pub trait SharedLimitStore: Send + Sync {
    /// The state stored under `key`, or `None` when nothing was written yet.
    async fn read_limit(&self, key: &str) -> Result<Option<SharedLimitState>, SharedLimitError>;

    /// Store `document` under `key` as version `expected + 1` (1 when `expected` is `None`)
    /// only if the stored version is still `expected` (absent for `None`): one conditional
    /// write. `Ok(false)` when another process wrote first (read again and retry).
    async fn swap_limit(&self, key: &str, expected: Option<u64>, document: &str) -> Result<bool, SharedLimitError>;
}
