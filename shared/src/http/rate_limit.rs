//! Client-side rate limit: a GCRA (virtual scheduling) limiter.
//!
//! Each request is given the next free slot `interval` after the previous one,
//! with up to `burst` slots usable back to back. Callers sleep until their slot,
//! so requests leave evenly spaced instead of in bursts that trip a vendor's 429.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub struct RateLimiter {
    interval: Duration,
    burst_window: Duration,
    /// Theoretical arrival time of the next request.
    next_slot: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second);
        Self { interval, burst_window: interval * burst.saturating_sub(1), next_slot: Mutex::new(None) }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Wait for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            // A slot may not be older than the burst window: idle time earns at most `burst` requests.
            let earliest = now.checked_sub(self.burst_window).unwrap_or(now);
            let slot = next.map_or(now, |t| t.max(earliest));
            *next = Some(slot + self.interval);
            slot
        };
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_at_the_configured_rate() {
        let limiter = RateLimiter::new(10.0, 1);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.acquire().await;
        }
        // 21 requests at 10/s: the first at 0, the last at 2.0 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(2000) && elapsed < Duration::from_millis(2050), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_earns_at_most_the_burst() {
        let limiter = RateLimiter::new(10.0, 5);
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(10), "burst of 5 should pass at once");
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(95), "the 6th waits for a slot: {:?}", start.elapsed());
    }
}
