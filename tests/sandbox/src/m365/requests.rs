//! Graph requests per tenant, as the tenant's Graph sees them: how a bench and the tests
//! tell "Graph requests per leaver" from the simulator rather than from the client.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Graph requests a customer tenant received (token requests are not Graph's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphRequests {
    /// HTTP requests: a `$batch` counts as one, whatever it holds.
    pub outer: u64,
    /// Of `outer`, the `$batch`es.
    pub batches: u64,
    /// Requests inside `$batch`es (each counts against the limits by itself).
    pub inner: u64,
}

impl std::ops::Sub for GraphRequests {
    type Output = GraphRequests;

    /// What was sent between two readings.
    fn sub(self, earlier: GraphRequests) -> GraphRequests {
        GraphRequests {
            outer: self.outer - earlier.outer,
            batches: self.batches - earlier.batches,
            inner: self.inner - earlier.inner,
        }
    }
}

/// The counts by tenant id.
#[derive(Default)]
pub(crate) struct RequestCounts(Mutex<BTreeMap<String, GraphRequests>>);

impl RequestCounts {
    fn update(&self, tenant: &str, change: impl FnOnce(&mut GraphRequests)) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        change(counts.entry(tenant.to_string()).or_default());
    }

    /// One HTTP request reached Graph with a token of `tenant`.
    pub fn outer(&self, tenant: &str, is_batch: bool) {
        self.update(tenant, |c| {
            c.outer += 1;
            c.batches += u64::from(is_batch);
        });
    }

    /// One request inside a `$batch` of `tenant`.
    pub fn inner(&self, tenant: &str) {
        self.update(tenant, |c| c.inner += 1);
    }

    pub fn of(&self, tenant: &str) -> GraphRequests {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(tenant).copied().unwrap_or_default()
    }
}
