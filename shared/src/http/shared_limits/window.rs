//! A rolling request window shared by every process: at most `limit` requests in any
//! `window`, all processes together.
//!
//! The document lists the requests granted, grouped by when they leave the window. A
//! process takes up to `block` requests with one conditional write and may send them
//! during [`GRANT_VALIDITY`] only (what is left then is dropped); each is counted as if sent
//! at the end of that time, plus the 1% margin the local budget keeps
//! (`super::super::budget`), so a request sent late never leaves the vendor's window later
//! than counted. Leave times are rounded up to a granule (1/200 of the window) and merged,
//! so the document stays small (at most about 200 entries) whatever the limit.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::SharedLimitError;
use super::SharedLimitStore;
use super::{Swap, epoch_micros, micros, with_patience};
use crate::http::{BudgetExhausted, BudgetSettings};

/// How long granted requests may be sent for (at most 1% of the window: a grant that
/// expires unused costs that much of the window's room).
pub const GRANT_VALIDITY: Duration = Duration::from_secs(3);
/// ...but never less than this: the validity counts from before the claim's round trip, so
/// a grant shorter than the store's latency expires before it can be used, and every claim
/// after it too (a 1-second window gave 10 ms, and a loaded DynamoDB took longer).
pub const MIN_GRANT_VALIDITY: Duration = Duration::from_millis(250);
/// Requests granted at once: this fraction of the limit, between 1 and [`MAX_BLOCK`].
const BLOCK_FRACTION: u32 = 60;
const MAX_BLOCK: u32 = 100;

#[derive(Debug, Default, Serialize, Deserialize)]
struct WindowDocument {
    /// `(leaves the window at, epoch µs; requests)`, oldest first.
    spent: Vec<(i64, u32)>,
}

impl WindowDocument {
    fn prune(&mut self, now_us: i64) {
        self.spent.retain(|(leaves, _)| *leaves > now_us);
    }

    fn used(&self) -> u64 {
        self.spent.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    fn add(&mut self, leaves_us: i64, requests: u32) {
        match self.spent.iter_mut().find(|(at, _)| *at == leaves_us) {
            Some(entry) => entry.1 += requests,
            None => {
                self.spent.push((leaves_us, requests));
                self.spent.sort_unstable_by_key(|(at, _)| *at);
            }
        }
    }
}

/// What a claim got: requests to send now, or the time until the window has room.
enum Grant {
    Requests(u32),
    Full { resets_in: Duration },
}

#[derive(Default)]
struct Local {
    left: u32,
    until: Option<Instant>,
}

/// Why no request may go out.
#[derive(Debug)]
pub enum WindowRefusal {
    /// The window is full for longer than the caller waits.
    Exhausted(BudgetExhausted),
    Store(SharedLimitError),
}

pub struct SharedWindow {
    store: Arc<dyn SharedLimitStore>,
    key: String,
    settings: BudgetSettings,
    local: Mutex<Local>,
}

impl SharedWindow {
    pub fn new(store: Arc<dyn SharedLimitStore>, key: String, settings: BudgetSettings) -> Self {
        Self { store, key, settings, local: Mutex::new(Local::default()) }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn validity(&self) -> Duration {
        (self.settings.window / 100).clamp(MIN_GRANT_VALIDITY, GRANT_VALIDITY)
    }

    fn block(&self) -> u32 {
        (self.settings.limit / BLOCK_FRACTION).clamp(1, MAX_BLOCK)
    }

    /// The vendor's window plus 1% (the local budget's margin) plus the grant's validity,
    /// rounded up to the granule: when a granted request surely left the vendor's window.
    fn leaves_at(&self, now_us: i64, validity: Duration) -> i64 {
        let window = self.settings.window + self.settings.window / 100;
        let granule = micros(self.settings.window / 200).max(1);
        let at = now_us.saturating_add(micros(window + validity));
        at.div_euclid(granule).saturating_add(1).saturating_mul(granule)
    }

    /// One request's worth of the shared window, waiting up to the budget's `max_wait`.
    pub async fn acquire(&self) -> Result<(), WindowRefusal> {
        let mut local = self.local.lock().await;
        loop {
            if local.left > 0 && local.until.is_some_and(|until| Instant::now() < until) {
                local.left -= 1;
                return Ok(());
            }
            let granted_at = Instant::now();
            let grant = with_patience(&self.key, || self.try_claim()).await.map_err(WindowRefusal::Store)?;
            match grant {
                Grant::Requests(n) => *local = Local { left: n, until: Some(granted_at + self.validity()) },
                Grant::Full { resets_in } if resets_in <= self.settings.max_wait && self.settings.limit > 0 => {
                    tokio::time::sleep(resets_in).await;
                }
                Grant::Full { resets_in } => {
                    return Err(WindowRefusal::Exhausted(BudgetExhausted {
                        limit: self.settings.limit,
                        window: self.settings.window,
                        resets_in,
                    }));
                }
            }
        }
    }

    async fn try_claim(&self) -> Result<Swap<Grant>, SharedLimitError> {
        let stored = self.store.read_limit(&self.key).await?;
        let expected = stored.as_ref().map(|state| state.version);
        let mut document: WindowDocument =
            stored.and_then(|state| serde_json::from_str(&state.document).ok()).unwrap_or_default();
        let now_us = epoch_micros();
        document.prune(now_us);
        let room = u64::from(self.settings.limit).saturating_sub(document.used());
        if room == 0 {
            let oldest = document.spent.first().map_or(now_us, |(at, _)| *at);
            return Ok(Swap::Done(Grant::Full { resets_in: Duration::from_micros(oldest.abs_diff(now_us)) }));
        }
        let granted = room.min(u64::from(self.block())) as u32;
        document.add(self.leaves_at(now_us, self.validity()), granted);
        let text = serde_json::to_string(&document).unwrap_or_default();
        Ok(if self.store.swap_limit(&self.key, expected, &text).await? {
            Swap::Done(Grant::Requests(granted))
        } else {
            Swap::Conflict
        })
    }

    /// The vendor refused for a full window: count what is left of it as spent now, for
    /// every process, and drop what this one still holds. Best effort: a store failure is
    /// logged (the local budget has counted the window full already).
    pub async fn fill(&self) {
        let mut local = self.local.lock().await;
        *local = Local::default();
        let fill = || async {
            let stored = self.store.read_limit(&self.key).await?;
            let expected = stored.as_ref().map(|state| state.version);
            let mut document: WindowDocument =
                stored.and_then(|state| serde_json::from_str(&state.document).ok()).unwrap_or_default();
            let now_us = epoch_micros();
            document.prune(now_us);
            let missing = u64::from(self.settings.limit).saturating_sub(document.used()) as u32;
            if missing == 0 {
                return Ok(Swap::Done(()));
            }
            document.add(self.leaves_at(now_us, Duration::ZERO), missing);
            let text = serde_json::to_string(&document).unwrap_or_default();
            Ok(if self.store.swap_limit(&self.key, expected, &text).await? { Swap::Done(()) } else { Swap::Conflict })
        };
        if let Err(error) = with_patience(&self.key, fill).await {
            tracing::warn!(key = %self.key, error = %error, "could not mark the shared window full");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::shared_limits::InProcessLimitStore;

    fn window(store: &Arc<InProcessLimitStore>, limit: u32, max_wait: Duration) -> SharedWindow {
        let settings = BudgetSettings { limit, window: Duration::from_secs(3600), max_wait };
        SharedWindow::new(store.clone(), "k".into(), settings)
    }

    #[tokio::test]
    async fn processes_together_get_the_limit_and_no_more() {
        let store = InProcessLimitStore::new();
        let windows: Vec<_> = (0..3).map(|_| window(&store, 100, Duration::ZERO)).collect();
        let mut granted = 0;
        'outer: loop {
            for w in &windows {
                match w.acquire().await {
                    Ok(()) => granted += 1,
                    Err(WindowRefusal::Exhausted(spent)) => {
                        assert!(spent.resets_in > Duration::from_secs(3600), "{:?}", spent.resets_in);
                        break 'outer;
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
        assert!(granted <= 100, "{granted} granted of a shared 100");
        assert!(granted >= 100 - 2 * 25, "blocks held by the others are the only loss: {granted}");
    }

    #[tokio::test]
    async fn a_full_window_is_full_for_every_process() {
        let store = InProcessLimitStore::new();
        // Blocks of 2: `a` holds one request after its first.
        let (a, b) = (window(&store, 120, Duration::ZERO), window(&store, 120, Duration::ZERO));
        a.acquire().await.unwrap();
        b.fill().await;
        assert!(matches!(b.acquire().await, Err(WindowRefusal::Exhausted(_))));
        // a still holds the rest of its first grant: the fill counted only what was unclaimed.
        assert!(a.acquire().await.is_ok());
    }
}
