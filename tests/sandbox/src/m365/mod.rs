//! Microsoft 365 for user offboarding (issue 14): customer tenants with users, groups,
//! SKUs, mailboxes and devices, served over Microsoft Graph v1.0 and Exchange Online's
//! InvokeCommand, after docs/vendors/microsoft-graph.md and docs/vendors/exchange-online.md.
//!
//! # Tokens
//! The Entra token endpoint (`/entra/{tenant}/oauth2/v2.0/token`, in `notify.rs`) also
//! issues tokens for the customer tenants below, to the same multi-tenant app
//! ([`crate::GRAPH_CLIENT_ID`] / [`crate::GRAPH_CLIENT_SECRET`]), with scope
//! `https://graph.microsoft.com/.default` or `https://outlook.office365.com/.default`; one
//! token per (tenant, resource). A tenant where the app has no consented service principal
//! → 400 `unauthorized_client` (AADSTS700016), and tokens issued before consent was
//! withdrawn → Graph 401 `Authorization_IdentityNotFound`.
//!
//! # Graph, prefix `/graph/v1.0` (shared with `sendMail` of the MSP tenant)
//! A customer-tenant token reaches the routes of [`graph`]; an Exchange token → 401
//! `InvalidAuthenticationToken` (wrong audience). The token names the tenant: users of
//! another tenant are not found. Every request is counted against the tenant's limits
//! ([`throttle`]) before it runs, inner `$batch` requests one by one.
//!
//! # Exchange Online, prefix [`EXO_PREFIX`] = `/exo` ([`crate::Sandbox::exchange_url`])
//! `POST /adminapi/beta/{tenantId}/InvokeCommand`: see [`exchange`].
//!
//! # Effects
//! [`M365Sim`] (from [`crate::Sandbox::m365`]) shows each tenant's current state and how
//! many writes were applied to each item ([`M365Sim::writes`]): every accepted write call
//! counts, a no-op included, so a test can assert "changed once" from the simulator. And
//! how many Graph requests each tenant received ([`M365Sim::requests`]): a `$batch` is one
//! outer request, its inner requests are counted apart.

mod auth;
mod batch;
mod exchange;
mod exchange_cmdlets;
mod fixture;
mod graph;
mod graph_groups;
mod graph_user_list;
mod graph_users;
mod model;
mod requests;
mod throttle;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

pub use auth::{EXCHANGE_SCOPE, GRAPH_SCOPE, Resource};
pub use fixture::*;
pub use model::{
    AutoReply, AutoReplyState, ExternalAudience, Group, GroupKind, Mailbox, MailboxKind, ManagedDevice, MobileDevice,
    Sku, Tenant, User,
};
pub use requests::GraphRequests;
pub use throttle::ThrottleSettings;

pub(crate) use exchange::{fault as exchange_fault, route as exchange_route};
pub(crate) use graph::entry as graph_entry;

/// Path prefix of Exchange Online (`/adminapi/beta/{tenantId}/InvokeCommand` below it).
pub const EXO_PREFIX: &str = "/exo";

/// One applied write: the tenant, the item (`users/{id}`, `groups/{id}`, `mailboxes/{userId}`,
/// `managedDevices/{id}`) and what was written (`accountEnabled`, `members.remove:{userId}`,
/// `Set-Mailbox:Type`, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WriteKey {
    pub tenant: String,
    pub item: String,
    pub action: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub tenants: BTreeMap<String, Tenant>,
    pub writes: BTreeMap<WriteKey, u64>,
    /// Every applied write in the order it was applied (for ordering rules).
    pub write_log: Vec<WriteKey>,
    pub next_id: u64,
}

impl State {
    /// A tenant by id or domain (ignoring case).
    pub fn tenant_key(&self, key: &str) -> Option<String> {
        self.tenants
            .values()
            .find(|t| t.id.eq_ignore_ascii_case(key) || t.domain.eq_ignore_ascii_case(key))
            .map(|t| t.id.clone())
    }

    pub fn record_write(&mut self, tenant: &str, item: &str, action: &str) {
        let key = WriteKey { tenant: tenant.to_string(), item: item.to_string(), action: action.to_string() };
        *self.writes.entry(key.clone()).or_default() += 1;
        self.write_log.push(key);
    }

    /// A fresh object id, GUID-shaped; `kind` tells objects apart when read in a log.
    pub fn new_id(&mut self, kind: u32) -> String {
        self.next_id += 1;
        fixture::guid(kind, self.next_id)
    }
}

/// The Microsoft 365 simulator: tenants, tokens, limits, and the writes applied.
pub struct M365Sim {
    state: Mutex<State>,
    tokens: auth::Tokens,
    throttle: throttle::Throttle,
    pub(crate) requests: requests::RequestCounts,
}

impl Default for M365Sim {
    fn default() -> Self {
        let mut state = State::default();
        fixture::seed_default(&mut state);
        Self {
            state: Mutex::new(state),
            tokens: auth::Tokens::default(),
            throttle: throttle::Throttle::default(),
            requests: requests::RequestCounts::default(),
        }
    }
}

impl M365Sim {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A tenant's id by id or domain, if the sandbox has it (consented or not).
    pub fn tenant_id(&self, key: &str) -> Option<String> {
        self.state().tenant_key(key)
    }

    /// A copy of the tenant's whole state.
    pub fn tenant(&self, tenant: &str) -> Option<Tenant> {
        let state = self.state();
        state.tenant_key(tenant).and_then(|id| state.tenants.get(&id).cloned())
    }

    /// A user by id or UPN (deleted users included, so a test can see the deletion).
    pub fn user(&self, tenant: &str, user: &str) -> Option<User> {
        let tenant = self.tenant(tenant)?;
        tenant
            .users
            .values()
            .find(|u| u.id.eq_ignore_ascii_case(user) || u.user_principal_name.eq_ignore_ascii_case(user))
            .cloned()
    }

    /// Makes a user synced from the AD account `sam` at `dn` (a test pairs a cloud user with
    /// an account of its own on the test DC).
    pub fn link_on_premises(&self, tenant: &str, user: &str, sam: &str, dn: &str) {
        let mut state = self.state();
        let Some(id) = state.tenant_key(tenant) else { return };
        let Some(tenant) = state.tenants.get_mut(&id) else { return };
        let found = tenant
            .users
            .values_mut()
            .find(|u| u.id.eq_ignore_ascii_case(user) || u.user_principal_name.eq_ignore_ascii_case(user));
        if let Some(found) = found {
            found.on_premises_sync_enabled = true;
            found.on_premises_sam_account_name = Some(sam.to_string());
            found.on_premises_distinguished_name = Some(dn.to_string());
        }
    }

    pub fn group(&self, tenant: &str, group: &str) -> Option<Group> {
        self.tenant(tenant)?.find_group(group).cloned()
    }

    /// The mailbox of a user (by id or UPN).
    pub fn mailbox(&self, tenant: &str, user: &str) -> Option<Mailbox> {
        let tenant = self.tenant(tenant)?;
        let id = tenant.user_id(user)?;
        tenant.mailboxes.get(&id).cloned()
    }

    pub fn managed_device(&self, tenant: &str, id: &str) -> Option<ManagedDevice> {
        self.tenant(tenant)?.managed_devices.get(id).cloned()
    }

    /// The user's licences now: `(skuId, None)` direct, `(skuId, Some(groupId))` inherited.
    pub fn licences(&self, tenant: &str, user: &str) -> Vec<(String, Option<String>)> {
        let Some(tenant) = self.tenant(tenant) else { return Vec::new() };
        tenant.find_user(user).map(|u| tenant.licence_states(u)).unwrap_or_default()
    }

    /// Ids of the groups the user is a direct member of.
    pub fn group_ids_of(&self, tenant: &str, user: &str) -> Vec<String> {
        let Some(tenant) = self.tenant(tenant) else { return Vec::new() };
        let Some(id) = tenant.user_id(user) else { return Vec::new() };
        tenant.groups_of(&id).iter().map(|g| g.id.clone()).collect()
    }

    /// Applied writes of `action` on `item` (`users/{id}`, …) in `tenant` (id).
    pub fn writes(&self, tenant: &str, item: &str, action: &str) -> u64 {
        let key = WriteKey { tenant: tenant.to_string(), item: item.to_string(), action: action.to_string() };
        self.state().writes.get(&key).copied().unwrap_or(0)
    }

    /// Applied writes of any kind on `item` in `tenant`.
    pub fn writes_on(&self, tenant: &str, item: &str) -> u64 {
        self.state().writes.iter().filter(|(k, _)| k.tenant == tenant && k.item == item).map(|(_, n)| n).sum()
    }

    /// Every applied write in `tenant` (id), in the order it was applied.
    pub fn write_log(&self, tenant: &str) -> Vec<WriteKey> {
        self.state().write_log.iter().filter(|k| k.tenant == tenant).cloned().collect()
    }

    /// Every applied write and its count.
    pub fn all_writes(&self) -> BTreeMap<WriteKey, u64> {
        self.state().writes.clone()
    }

    /// Replaces the limits (and forgets what was used), e.g. 5 writes per 2 s in a test.
    pub fn set_throttle(&self, settings: ThrottleSettings) {
        self.throttle.set(settings);
    }

    /// Requests (inner `$batch` ones included) refused by the limits so far.
    pub fn throttled(&self) -> u64 {
        self.throttle.refusals()
    }

    /// Graph requests received so far with tokens of `tenant` (id or domain); read it before
    /// and after a call and subtract to count what the call sent.
    pub fn requests(&self, tenant: &str) -> GraphRequests {
        let id = self.state().tenant_key(tenant).unwrap_or_else(|| tenant.to_string());
        self.requests.of(&id)
    }

    /// Customer-tenant tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.issued()
    }

    /// Every customer-tenant token issued so far stops working.
    pub fn revoke_tokens(&self) {
        self.tokens.revoke_all();
    }

    /// The app loses (or gets) its service principal in the tenant.
    pub fn set_consent(&self, tenant: &str, consented: bool) {
        let mut state = self.state();
        if let Some(id) = state.tenant_key(tenant)
            && let Some(t) = state.tenants.get_mut(&id)
        {
            t.consented = consented;
        }
    }

    /// A token for `tenant` (id or domain) and `resource`; `Err(true)` when the tenant is not
    /// known, `Err(false)` when the app has no consent there.
    pub(crate) fn issue_token(&self, tenant: &str, resource: Resource) -> Result<String, bool> {
        let state = self.state();
        let id = state.tenant_key(tenant).ok_or(true)?;
        if !state.tenants.get(&id).is_some_and(|t| t.consented) {
            return Err(false);
        }
        drop(state);
        Ok(self.tokens.issue(&id, resource))
    }

    /// Runs `f` on the tenant's state (for the builders of [`fixture`]).
    pub(crate) fn with_tenant<T>(&self, tenant: &str, f: impl FnOnce(&mut State, &str) -> T) -> Option<T> {
        let mut state = self.state();
        let id = state.tenant_key(tenant)?;
        Some(f(&mut state, &id))
    }
}
