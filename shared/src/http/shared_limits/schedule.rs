//! A request schedule shared by every process: one send time after another, at one pace.
//!
//! The document holds the next free send time and the pace. A process claims `block`
//! consecutive slots (the next free time, or now if that has passed, then one interval
//! apart) with one conditional write, and sends at those times; a slot it cannot use
//! within [`LATE_GRACE`] is dropped, never sent late into another process's slots.
//!
//! The pace is shared too, so ConnectWise's adaptive pacing (`super::super::rate_limit`)
//! holds across processes: a process whose own [`RateLimiter`] changed its pace (a 429, or
//! the climb back) writes the new pace with its next claim; the others adopt it with theirs.
//! A 429's `Retry-After` is written as well: no process gets a slot before it has passed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::SharedLimitError;
use super::SharedLimitStore;
use super::{Swap, epoch_micros, micros, to_instant, with_patience};
use crate::http::RateLimiter;

/// Slots claimed at once: this much time at the current pace (at least one slot).
pub const BLOCK_SPAN: Duration = Duration::from_millis(500);
/// A slot not used within this much after its time is dropped.
pub const LATE_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug, Default, Serialize, Deserialize)]
struct ScheduleDocument {
    /// The first free send time (epoch µs).
    next_us: i64,
    /// The shared pace, requests per second (0: not set yet).
    per_second: f64,
    /// Bumped whenever a process writes a new pace, so the others know to adopt it.
    pace_epoch: u64,
}

#[derive(Default)]
struct Local {
    slots: VecDeque<Instant>,
    /// The pace this process last wrote or adopted, and the document's epoch then.
    synced_rate: Option<f64>,
    seen_epoch: u64,
    /// No slot before this (a 429's `Retry-After`), written with the next claim.
    hold_until_us: i64,
}

pub struct SharedSchedule {
    store: Arc<dyn SharedLimitStore>,
    key: String,
    local: Mutex<Local>,
}

impl SharedSchedule {
    pub fn new(store: Arc<dyn SharedLimitStore>, key: String) -> Self {
        Self { store, key, local: Mutex::new(Local::default()) }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Wait for this process's next slot of the shared schedule, claiming a block when it
    /// has none left. `pace` is this connection's adaptive limiter.
    pub async fn acquire(&self, pace: &RateLimiter) -> Result<(), SharedLimitError> {
        let slot = {
            let mut local = self.local.lock().await;
            loop {
                let now = Instant::now();
                while local.slots.front().is_some_and(|slot| *slot + LATE_GRACE < now) {
                    local.slots.pop_front();
                }
                if let Some(slot) = local.slots.pop_front() {
                    break slot;
                }
                self.claim(&mut local, pace).await?;
            }
        };
        tokio::time::sleep_until(slot).await;
        Ok(())
    }

    /// The vendor answered 429 asking for `wait`: this process drops the slots it holds and
    /// writes the hold with its next claim, so no process sends before it has passed.
    pub async fn throttled(&self, wait: Duration) {
        let mut local = self.local.lock().await;
        local.slots.clear();
        local.hold_until_us = local.hold_until_us.max(epoch_micros().saturating_add(micros(wait)));
    }

    async fn claim(&self, local: &mut Local, pace: &RateLimiter) -> Result<(), SharedLimitError> {
        let (synced_rate, seen_epoch, hold_until_us) = (local.synced_rate, local.seen_epoch, local.hold_until_us);
        let slots = with_patience(&self.key, || self.try_claim(synced_rate, seen_epoch, hold_until_us, pace)).await?;
        local.synced_rate = Some(slots.rate);
        local.seen_epoch = slots.epoch;
        let (now_us, now) = (epoch_micros(), Instant::now());
        local.slots.extend(slots.times_us.iter().map(|at| to_instant(*at, now_us, now)));
        Ok(())
    }

    async fn try_claim(
        &self,
        synced_rate: Option<f64>,
        seen_epoch: u64,
        hold_until_us: i64,
        pace: &RateLimiter,
    ) -> Result<Swap<Claimed>, SharedLimitError> {
        let stored = self.store.read_limit(&self.key).await?;
        let expected = stored.as_ref().map(|state| state.version);
        let mut document: ScheduleDocument =
            stored.and_then(|state| serde_json::from_str(&state.document).ok()).unwrap_or_default();
        let local_rate = pace.current_rate();
        let changed_here = synced_rate.is_some_and(|rate| rate != local_rate);
        if document.per_second <= 0.0 || changed_here {
            // Our pace is news (first claim, or a 429 / the climb back happened here).
            document.per_second = local_rate;
            document.pace_epoch += 1;
        } else if document.pace_epoch != seen_epoch || synced_rate.is_none() {
            pace.adopt(document.per_second);
        }
        let rate = pace.current_rate().min(document.per_second).max(f64::MIN_POSITIVE);
        let interval_us = (1e6 / rate).ceil() as i64;
        let block = (BLOCK_SPAN.as_secs_f64() * rate).floor().max(1.0) as i64;
        let start = document.next_us.max(epoch_micros()).max(hold_until_us);
        document.next_us = start.saturating_add(block * interval_us);
        let text = serde_json::to_string(&document).unwrap_or_default();
        if !self.store.swap_limit(&self.key, expected, &text).await? {
            return Ok(Swap::Conflict);
        }
        let times_us = (0..block).map(|i| start + i * interval_us).collect();
        Ok(Swap::Done(Claimed { times_us, rate: pace.current_rate(), epoch: document.pace_epoch }))
    }
}

struct Claimed {
    times_us: Vec<i64>,
    rate: f64,
    epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::shared_limits::InProcessLimitStore;

    #[tokio::test]
    async fn two_schedules_on_one_store_share_one_pace() {
        let store = InProcessLimitStore::new();
        let (a, b) = (SharedSchedule::new(store.clone(), "k".into()), SharedSchedule::new(store.clone(), "k".into()));
        let (pace_a, pace_b) = (RateLimiter::new(40.0, 1), RateLimiter::new(40.0, 1));
        let start = std::time::Instant::now();
        for _ in 0..20 {
            tokio::join!(async { a.acquire(&pace_a).await.unwrap() }, async { b.acquire(&pace_b).await.unwrap() });
        }
        // 40 slots at 40 per second: the last at about 0.975 s, never less.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
        assert!(store.writes() <= 4, "blocks of 20 slots: {} writes", store.writes());
    }

    #[tokio::test]
    async fn a_pace_lowered_in_one_process_is_adopted_by_the_other() {
        let store = InProcessLimitStore::new();
        let (a, b) = (SharedSchedule::new(store.clone(), "k".into()), SharedSchedule::new(store.clone(), "k".into()));
        let (pace_a, pace_b) = (RateLimiter::new(100.0, 1), RateLimiter::new(100.0, 1));
        a.acquire(&pace_a).await.unwrap();
        b.acquire(&pace_b).await.unwrap();
        pace_a.throttled(Duration::ZERO);
        a.throttled(Duration::ZERO).await;
        a.acquire(&pace_a).await.unwrap();
        // b's block of 50 slots runs out, then it claims again and adopts 70.
        for _ in 0..51 {
            b.acquire(&pace_b).await.unwrap();
        }
        assert!((pace_b.current_rate() - 70.0).abs() < 1e-9, "{}", pace_b.current_rate());
    }
}
