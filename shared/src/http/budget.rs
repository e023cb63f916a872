//! A request budget over a rolling window: at most `limit` requests in any `window`.
//!
//! Vendors that count requests per window rather than per second need this instead of
//! (or besides) the GCRA limiter: Autotask allows 10,000 requests per rolling hour per
//! database, HaloPSA (hosted) about 300 per rolling five minutes. A GCRA limiter with a
//! burst would let `burst + rate·window` requests into one window, more than the limit;
//! this keeps the send times of the last `limit` requests and is exact.
//!
//! When the budget is spent a caller either waits for the oldest request to leave the
//! window, or, if that wait is longer than it is willing to wait, gets
//! [`BudgetExhausted`] at once, so that a workflow can stop cleanly and be resumed
//! later instead of being throttled into failure half-way.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// How a vendor connection spends a windowed budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Requests allowed in any `window`.
    pub limit: u32,
    pub window: Duration,
    /// The longest a request waits for budget; a longer wait fails with [`BudgetExhausted`].
    pub max_wait: Duration,
}

/// The budget has no room and will not have any within the caller's patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted {
    pub limit: u32,
    pub window: Duration,
    /// When the next request would fit.
    pub resets_in: Duration,
}

pub struct RequestBudget {
    settings: BudgetSettings,
    sent: Mutex<VecDeque<Instant>>,
}

impl RequestBudget {
    pub fn new(settings: BudgetSettings) -> Self {
        let capacity = settings.limit.min(100_000) as usize;
        Self { settings, sent: Mutex::new(VecDeque::with_capacity(capacity)) }
    }

    pub fn settings(&self) -> &BudgetSettings {
        &self.settings
    }

    /// The window as we count it: 1% longer than the vendor's, because the vendor counts
    /// arrivals and we count departures; a request that left late and one that left early
    /// could otherwise land inside one vendor window.
    fn effective_window(&self) -> Duration {
        self.settings.window + self.settings.window / 100
    }

    fn prune(sent: &mut VecDeque<Instant>, window: Duration, now: Instant) {
        while sent.front().is_some_and(|at| now.duration_since(*at) >= window) {
            sent.pop_front();
        }
    }

    /// Take one request's worth of budget, waiting up to `max_wait` for it.
    pub async fn acquire(&self) -> Result<(), BudgetExhausted> {
        loop {
            let wait = {
                let mut sent = self.sent.lock().await;
                let now = Instant::now();
                Self::prune(&mut sent, self.effective_window(), now);
                if (sent.len() as u64) < u64::from(self.settings.limit) {
                    sent.push_back(now);
                    return Ok(());
                }
                // Full: the oldest request in the window frees the next slot.
                let oldest = *sent.front().expect("a full budget has entries");
                (oldest + self.effective_window()).saturating_duration_since(now)
            };
            if wait > self.settings.max_wait || self.settings.limit == 0 {
                return Err(BudgetExhausted {
                    limit: self.settings.limit,
                    window: self.settings.window,
                    resets_in: wait,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Count `requests` sent by others (another run, another integration on the same
    /// tenant) as if sent now: the conservative reading of a vendor's usage counter,
    /// which says how many but not when.
    pub async fn record_external(&self, requests: u64) {
        let mut sent = self.sent.lock().await;
        let now = Instant::now();
        Self::prune(&mut sent, self.effective_window(), now);
        let room = u64::from(self.settings.limit).saturating_sub(sent.len() as u64);
        for _ in 0..requests.min(room) {
            sent.push_back(now);
        }
    }

    /// The vendor refused for a full window (a 429 without `Retry-After`): someone (another
    /// integration, another run) filled it. Count it as full, each missing request as sent
    /// so that it leaves our window exactly one vendor window from now — the conservative
    /// reading, since the vendor does not say when its oldest request leaves.
    pub async fn fill_window(&self) {
        let mut sent = self.sent.lock().await;
        let now = Instant::now();
        Self::prune(&mut sent, self.effective_window(), now);
        let missing = (self.settings.limit as usize).saturating_sub(sent.len());
        // Our window is 1% longer than the vendor's: back-date by that margin.
        let at = now.checked_sub(self.effective_window() - self.settings.window).unwrap_or(now);
        let position = sent.partition_point(|t| *t <= at);
        let later = sent.split_off(position);
        sent.extend(std::iter::repeat_n(at, missing));
        sent.extend(later);
    }

    /// Requests that would be admitted right now.
    pub async fn remaining(&self) -> u32 {
        let mut sent = self.sent.lock().await;
        Self::prune(&mut sent, self.effective_window(), Instant::now());
        self.settings.limit.saturating_sub(sent.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: u32, window_secs: u64, max_wait_secs: u64) -> RequestBudget {
        RequestBudget::new(BudgetSettings {
            limit,
            window: Duration::from_secs(window_secs),
            max_wait: Duration::from_secs(max_wait_secs),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_budget_fails_fast_when_the_caller_will_not_wait() {
        let budget = budget(3, 3600, 0);
        for _ in 0..3 {
            budget.acquire().await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(600)).await;
        let err = budget.acquire().await.unwrap_err();
        // One hour plus the 1% margin (36 s), less the 600 s that passed.
        assert_eq!(err.resets_in, Duration::from_secs(3036));
        assert_eq!(budget.remaining().await, 0);
        tokio::time::advance(Duration::from_secs(3036)).await;
        assert_eq!(budget.remaining().await, 3, "the whole first burst left the window");
        budget.acquire().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_patient_caller_waits_for_the_oldest_request_to_leave_the_window() {
        let budget = budget(2, 300, 300);
        let start = Instant::now();
        budget.acquire().await.unwrap();
        tokio::time::advance(Duration::from_secs(100)).await;
        budget.acquire().await.unwrap();
        budget.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(303), "third request waits for the first to expire (+1%)");
        budget.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(403));
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_window() {
        let budget = budget(5, 10, 60);
        let mut sent = Vec::new();
        let start = Instant::now();
        for _ in 0..23 {
            budget.acquire().await.unwrap();
            sent.push(start.elapsed());
        }
        for (i, at) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().filter(|t| **t < *at + Duration::from_secs(10)).count();
            assert!(in_window <= 5, "{in_window} requests in the window starting at {at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_the_vendor_says_is_full_has_room_one_vendor_window_later() {
        let budget = budget(10, 300, 300);
        let start = Instant::now();
        for _ in 0..3 {
            budget.acquire().await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(100)).await;
        budget.fill_window().await;
        assert_eq!(budget.remaining().await, 0);
        // Our three leave at 303 s (window + 1%); the vendor's full window at 100 + 300 s.
        budget.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(303));
        assert_eq!(budget.remaining().await, 2, "our own three requests left first");
        budget.acquire().await.unwrap();
        budget.acquire().await.unwrap();
        budget.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(400), "then the vendor's window, not 1% later");
        let impatient = RequestBudget::new(BudgetSettings {
            limit: 5,
            window: Duration::from_secs(3600),
            max_wait: Duration::ZERO,
        });
        impatient.fill_window().await;
        assert_eq!(impatient.acquire().await.unwrap_err().resets_in, Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn external_usage_reduces_what_is_left() {
        let budget = budget(10, 3600, 0);
        budget.record_external(8).await;
        assert_eq!(budget.remaining().await, 2);
        budget.record_external(50).await;
        assert_eq!(budget.remaining().await, 0);
        assert!(budget.acquire().await.is_err());
    }
}
