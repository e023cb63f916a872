//! Client-side rate limit: a GCRA (virtual scheduling) limiter that slows down when the
//! vendor throttles.
//!
//! Each request is given the next free slot `interval` after the previous one, with up
//! to `burst` slots usable back to back. Callers sleep until their slot, so requests
//! leave evenly spaced instead of in bursts that trip a vendor's 429.
//!
//! The configured rate is a ceiling, not a promise the vendor made: ConnectWise publishes
//! no quota (docs/vendors/connectwise.md#rate-limits). A 429 therefore (a) holds every
//! slot until the vendor's `Retry-After` has passed, so the requests in the queue do not
//! run into the same refusal, and (b) lowers the pace to [`SLOW_DOWN`] of what it was, or
//! to the rate the vendor admitted since the previous 429 if that is lower.
//! Every [`RECOVER_AFTER`] answers without a 429 the pace climbs back by [`RECOVER_STEP`]
//! of the configured rate, never above it: additive increase, multiplicative decrease, so
//! the pace settles just under what the vendor admits and a 429 stays rare.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The pace after a 429, as a fraction of the pace before.
pub const SLOW_DOWN: f64 = 0.7;
/// Answers without a 429 after which the pace climbs one step.
pub const RECOVER_AFTER: u32 = 50;
/// One step of the climb back, as a fraction of the configured rate.
pub const RECOVER_STEP: f64 = 0.02;
/// The pace never drops below this fraction of the configured rate (a vendor that
/// refuses everything is the retry logic's business, not a reason to stall for hours).
const FLOOR: f64 = 0.05;

pub struct RateLimiter {
    configured: f64,
    burst: u32,
    state: Mutex<Pace>,
}

struct Pace {
    per_second: f64,
    /// Theoretical arrival time of the next request.
    next_slot: Option<Instant>,
    /// Answers without a 429 since the pace last changed.
    calm: u32,
    /// No request leaves before this (the vendor's `Retry-After` after a 429).
    held_until: Option<Instant>,
    /// The last 429 that changed the pace, and the answers without a 429 since: the rate
    /// the vendor admitted over that stretch.
    last_throttle: Option<Instant>,
    admitted_since: u64,
}

impl Pace {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        let pace =
            Pace { per_second, next_slot: None, calm: 0, held_until: None, last_throttle: None, admitted_since: 0 };
        Self { configured: per_second, burst: burst.max(1), state: Mutex::new(pace) }
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The spacing between requests now.
    pub fn interval(&self) -> Duration {
        self.pace().interval()
    }

    /// Requests per second now (the configured rate, or less after a 429).
    pub fn current_rate(&self) -> f64 {
        self.pace().per_second
    }

    /// The configured rate (the ceiling the pace climbs back to).
    pub fn configured_rate(&self) -> f64 {
        self.configured
    }

    /// Take the pace other processes settled on (the shared schedule's,
    /// `shared_limits::SharedSchedule`), kept between the floor and the configured rate; the
    /// climb back starts over from it.
    pub fn adopt(&self, per_second: f64) {
        if !per_second.is_finite() {
            return;
        }
        let mut pace = self.pace();
        pace.per_second = per_second.clamp(self.configured * FLOOR, self.configured);
        pace.calm = 0;
    }

    /// Wait for this caller's slot. A caller whose slot comes while a 429's hold is on
    /// waits for the hold to end and takes a new slot after it.
    pub async fn acquire(&self) {
        loop {
            let slot = self.next_slot();
            if slot > Instant::now() {
                tokio::time::sleep_until(slot).await;
            }
            let held_until = self.pace().held_until;
            match held_until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    fn next_slot(&self) -> Instant {
        let mut pace = self.pace();
        let interval = pace.interval();
        let now = Instant::now();
        // A slot may not be older than the burst window: idle time earns at most `burst` requests.
        let earliest = now.checked_sub(interval * (self.burst - 1)).unwrap_or(now);
        let slot = pace.next_slot.map_or(now, |t| t.max(earliest));
        pace.next_slot = Some(slot + interval);
        slot
    }

    /// The vendor answered 429 and asked for `wait`: no request leaves before it has
    /// passed, and the pace drops, once per hold: the 429s of requests that were already
    /// on their way when the first came say nothing new about the pace.
    pub fn throttled(&self, wait: Duration) {
        let mut pace = self.pace();
        let now = Instant::now();
        let resume = now + wait;
        let already_held = pace.held_until.is_some_and(|until| until > now);
        pace.held_until = Some(pace.held_until.map_or(resume, |t| t.max(resume)));
        pace.next_slot = Some(pace.next_slot.map_or(resume, |t| t.max(resume)));
        pace.calm = 0;
        if already_held {
            return;
        }
        let old = pace.per_second;
        // What the vendor admitted between two 429s is a pace it can sustain; a fraction of
        // the old pace is the guess when there is no earlier 429.
        let admitted = pace
            .last_throttle
            .map(|last| pace.admitted_since as f64 / now.duration_since(last).as_secs_f64().max(1e-3))
            .unwrap_or(f64::INFINITY);
        pace.per_second = (old * SLOW_DOWN).min(admitted).max(self.configured * FLOOR);
        pace.last_throttle = Some(now);
        pace.admitted_since = 0;
        tracing::info!(from = old, to = pace.per_second, wait_ms = wait.as_millis() as u64, "throttled: slowing down");
    }

    /// The vendor answered without a 429: after enough of those, a little faster again.
    pub fn answered(&self) {
        let mut pace = self.pace();
        pace.admitted_since += 1;
        if pace.per_second >= self.configured {
            return;
        }
        pace.calm += 1;
        if pace.calm >= RECOVER_AFTER {
            pace.calm = 0;
            pace.per_second = (pace.per_second + self.configured * RECOVER_STEP).min(self.configured);
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

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_every_slot_for_its_wait_and_slows_the_pace() {
        let limiter = RateLimiter::new(10.0, 1);
        limiter.acquire().await;
        let start = Instant::now();
        limiter.throttled(Duration::from_secs(1));
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(1), "no slot before Retry-After: {:?}", start.elapsed());
        assert!((limiter.current_rate() - 7.0).abs() < 1e-9, "{}", limiter.current_rate());
        let before = Instant::now();
        limiter.acquire().await;
        // 7 per second: 1/7 s apart.
        assert!(before.elapsed() >= Duration::from_millis(142), "{:?}", before.elapsed());
    }

    #[test]
    fn the_pace_climbs_back_in_steps_and_never_above_the_configured_rate() {
        let limiter = RateLimiter::new(10.0, 1);
        limiter.throttled(Duration::ZERO);
        for _ in 0..RECOVER_AFTER - 1 {
            limiter.answered();
        }
        assert!((limiter.current_rate() - 7.0).abs() < 1e-9);
        limiter.answered();
        assert!((limiter.current_rate() - 7.2).abs() < 1e-9, "{}", limiter.current_rate());
        for _ in 0..RECOVER_AFTER * 100 {
            limiter.answered();
        }
        assert_eq!(limiter.current_rate(), 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_429_drops_the_pace_to_what_the_vendor_admitted_since_the_first() {
        let limiter = RateLimiter::new(10.0, 1);
        limiter.throttled(Duration::ZERO);
        for _ in 0..6 {
            limiter.answered();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // 6 answers in 2 s: 3 per second, below 70 % of 7.
        limiter.throttled(Duration::ZERO);
        assert!((limiter.current_rate() - 3.0).abs() < 1e-6, "{}", limiter.current_rate());
    }

    #[tokio::test(start_paused = true)]
    async fn the_429s_of_requests_already_on_their_way_slow_the_pace_once() {
        let limiter = RateLimiter::new(10.0, 1);
        for _ in 0..5 {
            limiter.throttled(Duration::from_secs(1));
        }
        assert!((limiter.current_rate() - 7.0).abs() < 1e-9, "{}", limiter.current_rate());
    }

    #[test]
    fn repeated_429s_stop_at_the_floor() {
        let limiter = RateLimiter::new(10.0, 1);
        for _ in 0..100 {
            limiter.throttled(Duration::ZERO);
        }
        assert!((limiter.current_rate() - 0.5).abs() < 1e-9, "{}", limiter.current_rate());
    }
}
