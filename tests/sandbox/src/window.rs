//! A vendor's rolling request window (Autotask per hour, HaloPSA and IT Glue per five
//! minutes), with a length tests can shorten so that reaching the vendor's own limit takes
//! milliseconds, and a way for "another integration" to use part of it first.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct RollingWindow {
    length: Mutex<Duration>,
    sent: Mutex<VecDeque<Instant>>,
}

impl RollingWindow {
    pub(crate) fn new(length: Duration) -> Self {
        Self { length: Mutex::new(length), sent: Mutex::new(VecDeque::new()) }
    }

    pub(crate) fn length(&self) -> Duration {
        *self.length.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_length(&self, length: Duration) {
        *self.length.lock().unwrap_or_else(|e| e.into_inner()) = length;
    }

    fn pruned(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        let length = self.length();
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        while sent.front().is_some_and(|t| now.duration_since(*t) >= length) {
            sent.pop_front();
        }
        sent
    }

    /// Counts one request if fewer than `limit` are in the window; `false` when it is full.
    pub(crate) fn admit(&self, limit: u32) -> bool {
        let mut sent = self.pruned();
        if sent.len() >= limit as usize {
            return false;
        }
        sent.push_back(Instant::now());
        true
    }

    /// Requests in the window now.
    pub(crate) fn len(&self) -> usize {
        self.pruned().len()
    }

    /// `n` requests of another integration (another client of the same tenant), sent now.
    pub(crate) fn record_foreign(&self, n: usize) {
        let mut sent = self.pruned();
        let now = Instant::now();
        sent.extend(std::iter::repeat_n(now, n));
    }
}
