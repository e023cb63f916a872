//! Graph's identity-and-access limits per app+tenant pair (docs/vendors/microsoft-graph.md
//! #directory-throttling): a write quota (3,000 writes per 150 s) and resource units per 10 s
//! by tenant size (3,500 under 50 users, 5,000 up to 500, 8,000 above). Both can be shortened
//! for tests ([`super::M365Sim::set_throttle`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits the simulator applies, per tenant (the app is always the MSP's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Writes admitted per [`Self::write_window`].
    pub write_quota: u32,
    pub write_window: Duration,
    /// Resource units per [`Self::unit_window`]; `None`: by tenant size, as Graph does.
    pub resource_units: Option<u32>,
    pub unit_window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            write_quota: 3_000,
            write_window: Duration::from_secs(150),
            resource_units: None,
            unit_window: Duration::from_secs(10),
        }
    }
}

impl ThrottleSettings {
    /// From the admin route's `{"write_quota","write_window_ms","resource_units","unit_window_ms"}`;
    /// a missing field keeps Graph's value.
    pub fn from_admin(limits: &serde_json::Value) -> ThrottleSettings {
        let graph = ThrottleSettings::default();
        let millis = |name: &str, default: Duration| limits[name].as_u64().map_or(default, Duration::from_millis);
        ThrottleSettings {
            write_quota: limits["write_quota"].as_u64().map_or(graph.write_quota, |n| n.min(u32::MAX as u64) as u32),
            write_window: millis("write_window_ms", graph.write_window),
            resource_units: limits["resource_units"].as_u64().map(|n| n.min(u32::MAX as u64) as u32),
            unit_window: millis("unit_window_ms", graph.unit_window),
        }
    }
}

/// A refusal: which limit, and when to come back (whole seconds, at least 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Throttled {
    pub scope: &'static str,
    pub retry_after_secs: u64,
}

#[derive(Default)]
struct Usage {
    writes: VecDeque<Instant>,
    units: VecDeque<(Instant, u32)>,
}

#[derive(Default)]
pub(crate) struct Throttle {
    settings: Mutex<ThrottleSettings>,
    usage: Mutex<HashMap<String, Usage>>,
    refusals: Mutex<u64>,
}

/// Graph's resource-unit budget for a tenant of this many users.
fn units_for(users: usize) -> u32 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

fn retry_after(oldest: Instant, window: Duration, now: Instant) -> u64 {
    let wait = (oldest + window).saturating_duration_since(now);
    (wait.as_secs_f64().ceil() as u64).max(1)
}

impl Throttle {
    pub fn set(&self, settings: ThrottleSettings) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn settings(&self) -> ThrottleSettings {
        self.settings.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn refusals(&self) -> u64 {
        *self.refusals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a request costing `units` (and one write if `write`) for `tenant`, or says
    /// why not. A refused request uses up nothing.
    pub fn admit(&self, tenant: &str, tenant_users: usize, units: u32, write: bool) -> Result<u32, Throttled> {
        let settings = self.settings();
        let now = Instant::now();
        let mut all = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let usage = all.entry(tenant.to_string()).or_default();
        while usage.writes.front().is_some_and(|t| now.duration_since(*t) >= settings.write_window) {
            usage.writes.pop_front();
        }
        while usage.units.front().is_some_and(|(t, _)| now.duration_since(*t) >= settings.unit_window) {
            usage.units.pop_front();
        }
        let budget = settings.resource_units.unwrap_or_else(|| units_for(tenant_users));
        let used: u32 = usage.units.iter().map(|(_, u)| *u).sum();
        let refusal = if write && usage.writes.len() as u32 >= settings.write_quota {
            let oldest = usage.writes.front().copied().unwrap_or(now);
            Some(Throttled { scope: "Write", retry_after_secs: retry_after(oldest, settings.write_window, now) })
        } else if used + units > budget {
            let oldest = usage.units.front().map(|(t, _)| *t).unwrap_or(now);
            Some(Throttled { scope: "ReadWrite", retry_after_secs: retry_after(oldest, settings.unit_window, now) })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            *self.refusals.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            return Err(refusal);
        }
        usage.units.push_back((now, units));
        if write {
            usage.writes.push_back(now);
        }
        Ok(units)
    }
}
