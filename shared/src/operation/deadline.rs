//! The invocation's deadline: the instant a run stops sending changes by, so a Lambda
//! invocation ends with time to record what it did and to answer, instead of being cut
//! off with its operation left `started` (docs/architecture.md#runs-that-outlive-one-invocation).
//!
//! A run stopped by its deadline is not a failure: the engine ends it with
//! [`ErrorCode::DeadlineReached`], the workflow's report carries a [`Continuation`], and
//! the next invocation resumes the operation from its audit trail. The CLI sets none.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, OfframpError};

/// An optional instant to stop by. `Deadline::none()` (the default) never stops a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline: the run goes to the end (the CLI, the sweep's own runs, tests).
    pub fn none() -> Self {
        Self(None)
    }

    pub fn at(instant: Instant) -> Self {
        Self(Some(instant))
    }

    /// `work` from now.
    pub fn after(work: Duration) -> Self {
        Self(Some(Instant::now() + work))
    }

    /// A Lambda invocation's: the runtime's deadline (`deadline_ms`, milliseconds since the
    /// epoch) less `margin` (time to finish the window in flight, record and answer), and no
    /// later than `cap` of work from now when one is set (`OFFRAMP_INVOCATION_MAX_SECONDS`).
    ///
    /// The margin is at most half the time the invocation has: a function with a short
    /// timeout (`cargo lambda watch`'s default, or one configured at 30 s) would otherwise
    /// stop before its first change, every time, and never finish.
    pub fn for_invocation(deadline_ms: u64, margin: Duration, cap: Option<Duration>) -> Self {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        if deadline_ms <= now_ms {
            // Lambda never starts an invocation past its deadline: this is a runtime that
            // sends none (a local emulator's 0). Only the cap, if any, limits the run.
            tracing::warn!(deadline_ms, now_ms, "the invocation's deadline is not in the future: ignored");
            return cap.map_or_else(Self::none, Self::after);
        }
        let remaining = Duration::from_millis(deadline_ms - now_ms);
        let allowed = remaining.saturating_sub(margin.min(remaining / 2));
        let work = cap.map_or(allowed, |cap| cap.min(allowed));
        Self::after(work)
    }

    /// Whether the run must stop sending changes now.
    pub fn reached(&self) -> bool {
        self.0.is_some_and(|at| Instant::now() >= at)
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The error that ends a run at its deadline: resumable, and not a failure.
    pub fn stop(&self) -> OfframpError {
        OfframpError::new(
            ErrorCode::DeadlineReached,
            "the invocation's deadline is near: the run stopped sending changes, recorded what it did and is to be \
             continued",
        )
    }
}

/// Why a report asks to be continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinuationReason {
    Deadline,
}

/// The cursor a report carries when its run stopped at the deadline: call the workflow
/// again with this `operation_id` (the request's resume field) until a report has none.
/// The state machine's `Choice` tests for its presence (`$.continuation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    pub operation_id: String,
    pub reason: ContinuationReason,
    /// Items not attempted yet.
    pub remaining: u64,
}

impl Continuation {
    /// The continuation of a run that ended on `stopped`, if the deadline is what stopped it.
    pub fn after(stopped: Option<&OfframpError>, operation_id: &str, remaining: u64) -> Option<Self> {
        let stopped = stopped?;
        (stopped.code() == ErrorCode::DeadlineReached).then(|| Self {
            operation_id: operation_id.to_string(),
            reason: ContinuationReason::Deadline,
            remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_invocation_keeps_half_its_time_whatever_the_margin() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        // 30 s left, a 60 s margin: about 15 s of work, not none.
        let deadline = Deadline::for_invocation(now_ms + 30_000, Duration::from_secs(60), None);
        assert!(!deadline.reached(), "a short invocation may still work");
        let at = deadline.0.expect("a deadline");
        let left = at.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(13) && left <= Duration::from_secs(15), "{left:?}");
        // 900 s left: the whole margin is kept.
        let long = Deadline::for_invocation(now_ms + 900_000, Duration::from_secs(60), None).0.unwrap();
        assert!(long.saturating_duration_since(Instant::now()) <= Duration::from_secs(840));
    }

    #[test]
    fn no_deadline_is_never_reached_and_a_past_one_is() {
        assert!(!Deadline::none().reached());
        assert!(Deadline::after(Duration::ZERO).reached());
        assert!(!Deadline::after(Duration::from_secs(60)).reached());
    }

    #[test]
    fn an_invocation_stops_a_margin_before_lambda_does_and_no_later_than_its_cap() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let margin = Duration::from_secs(60);
        // A deadline not in the future is no deadline (a local runtime's 0); the cap still holds.
        assert!(!Deadline::for_invocation(0, margin, None).is_set());
        assert!(Deadline::for_invocation(now_ms.saturating_sub(1_000), margin, Some(Duration::ZERO)).reached());
        let roomy = Deadline::for_invocation(now_ms + 900_000, margin, None);
        assert!(!roomy.reached());
        let capped = Deadline::for_invocation(now_ms + 900_000, margin, Some(Duration::ZERO));
        assert!(capped.reached(), "the cap stops it even though Lambda allows more");
    }

    #[test]
    fn only_the_deadline_makes_a_continuation() {
        let deadline = Deadline::none().stop();
        let continuation = Continuation::after(Some(&deadline), "op", 7).expect("a continuation");
        assert_eq!(
            serde_json::to_value(&continuation).unwrap(),
            serde_json::json!({"operation_id": "op", "reason": "deadline", "remaining": 7})
        );
        let budget = OfframpError::new(ErrorCode::RequestBudgetExhausted, "spent");
        assert_eq!(Continuation::after(Some(&budget), "op", 7), None);
        assert_eq!(Continuation::after(None, "op", 7), None);
    }
}
