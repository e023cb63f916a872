//! Access tokens of the MSP's multi-tenant app in customer tenants: one token per (tenant,
//! resource), as Entra issues them by client credentials (docs/vendors/microsoft-graph.md
//! #customer-tenants). The token endpoint itself is `notify::entra_route`; it asks
//! [`super::M365Sim::issue_token`] for customer tenants.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The resource a token was issued for (its audience).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `https://graph.microsoft.com/.default`
    Graph,
    /// `https://outlook.office365.com/.default` (Exchange Online InvokeCommand)
    Exchange,
}

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const EXCHANGE_SCOPE: &str = "https://outlook.office365.com/.default";

impl Resource {
    pub fn from_scope(scope: &str) -> Option<Resource> {
        match scope.trim() {
            GRAPH_SCOPE => Some(Resource::Graph),
            EXCHANGE_SCOPE => Some(Resource::Exchange),
            _ => None,
        }
    }
}

pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(3599);

#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    pub tenant_id: String,
    pub resource: Resource,
    expiry: Instant,
}

#[derive(Default)]
pub(crate) struct Tokens {
    tokens: Mutex<HashMap<String, IssuedToken>>,
    issued: Mutex<u64>,
}

impl Tokens {
    pub fn issue(&self, tenant_id: &str, resource: Resource) -> String {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        *issued += 1;
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let a = RandomState::new().hash_one((*issued, nanos, tenant_id));
        let b = RandomState::new().hash_one((a, *issued));
        let token = format!("eyJ0eXAiOiJKV1QiLCJtMzY1Ijp0cnVlfQ.{a:016x}{b:016x}");
        let record = IssuedToken { tenant_id: tenant_id.to_string(), resource, expiry: Instant::now() + TOKEN_TTL };
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), record);
        token
    }

    /// The token's tenant and audience while it is valid.
    pub fn lookup(&self, token: &str) -> Option<IssuedToken> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(token).filter(|t| t.expiry > Instant::now()).cloned()
    }

    pub fn issued(&self) -> u64 {
        *self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn revoke_all(&self) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
