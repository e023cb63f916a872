//! Ports: the traits workflows are written against.
//!
//! Every trait is object safe (`async_trait`) so that entry points choose the
//! adapter at run time (`OFFRAMP_PSA`, `OFFRAMP_AUDIT_TABLE` or `OFFRAMP_AUDIT_DB`, …).

/// The macro every port is declared with, for implementations outside this crate (test
/// doubles that wrap an adapter): they need not depend on `async-trait` themselves.
pub use async_trait::async_trait;

use crate::domain::{
    Company, ConfigStatus, Configuration, Contact, ContractSummary, IdempotencyClaim, IdempotencyRecord, ItemChange,
    ItemSnapshot, Lease, LeaseRequest, NewTicket, Notification, OffboardedCriteria, OperationDetail, OperationEvent,
    OperationFilter, OperationRecord, OperationSummary, PrimaryContactSignal, PsaKind, SettingRecord, Ticket,
    TicketAssignment, TicketNote,
};
use crate::error::{ArchiveError, AuditError, DocError, NotifyError, PsaError, SecretError};
// The shared-limit port belongs to the HTTP layer, which uses it (no import back up).
pub use crate::http::shared_limits::{SharedLimitState, SharedLimitStore};
use crate::secret::SecretString;

mod approvals;
mod chain;
mod directory;
mod evidence;
mod invoker;
mod onprem;
pub use approvals::{ApprovalStore, TaskCallback};
pub use chain::{ChainStarter, MemoryChainStarter, StartedChain};
pub use directory::{
    AutoReply, AutoReplyState, CloudDirectory, Directory, DirectoryError, DirectoryGroup, DirectoryUser, Forwarding,
    GroupKind, LeaverState, Licence, MailboxInfo, MailboxType, Mailboxes, ManagedDevice, MobileDevice, OnPremises,
    OwnedGroup, UserChange, apply_changes_one_by_one, apply_one as apply_user_change, read_leaver_one_by_one,
};
pub use evidence::{EVIDENCE_PREFIX, EvidenceLocation, EvidenceStore, evidence_key};
pub use invoker::{MemoryWorkflowInvoker, WorkflowInvoker};
pub use onprem::{ACCOUNT_DISABLED, AdGroup, AdUser, OnPremDirectory, parent_dn};

/// A PSA (ConnectWise Manage, Autotask, HaloPSA) as the workflows need it.
#[async_trait]
pub trait Psa: Send + Sync {
    fn kind(&self) -> PsaKind;

    /// The company with this id, or `None` when the PSA has no such company.
    async fn company_by_id(&self, id: &str) -> Result<Option<Company>, PsaError>;

    /// Companies whose name equals `name`, ignoring case. Never a fuzzy match.
    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, PsaError>;

    /// Companies that may match `criteria`, narrowed on the server as far as the PSA's
    /// filters allow. Callers keep only those for which [`OffboardedCriteria::matches`] holds.
    /// The contract criterion is not applied here (see the two methods below).
    async fn offboarded_candidates(&self, criteria: &OffboardedCriteria) -> Result<Vec<Company>, PsaError>;

    /// Ids of companies with at least one contract that ended before `today` or was
    /// cancelled: the candidates for "every contract ended".
    async fn companies_with_ended_contracts(&self, today: chrono::NaiveDate) -> Result<Vec<String>, PsaError>;

    /// All of one company's contracts, summarised as of `today`.
    async fn contract_summary(&self, company_id: &str, today: chrono::NaiveDate) -> Result<ContractSummary, PsaError>;

    /// Every configuration of the company, all pages. Archived ones (see
    /// [`crate::domain::ConfigState::Archived`]) only when `include_archived`.
    async fn list_configurations(
        &self,
        company_id: &str,
        include_archived: bool,
    ) -> Result<Vec<Configuration>, PsaError>;

    /// The company's configurations whose ids lie between `first` and `last` (inclusive,
    /// numeric order), archived ones included, all pages: what a resumed run reads of the
    /// part it is about to work on instead of the whole client
    /// (docs/reliability.md#runs-across-invocations). `None` when this PSA cannot filter a
    /// listing by id range; the caller then lists the company once.
    async fn list_configurations_between(
        &self,
        company_id: &str,
        first: &str,
        last: &str,
    ) -> Option<Result<Vec<Configuration>, PsaError>> {
        let _ = (company_id, first, last);
        None
    }

    /// One configuration, fresh from the PSA.
    async fn configuration(&self, id: &str) -> Result<Option<Configuration>, PsaError>;

    /// Set the configuration inactive; returns its state afterwards.
    async fn deactivate_configuration(&self, config: &Configuration) -> Result<Configuration, PsaError>;

    /// How many configurations one update request can carry (HaloPSA updates are arrays).
    fn update_batch_size(&self) -> usize {
        1
    }

    /// Set several configurations inactive; one result per configuration, in order.
    /// PSAs that can update many records in one request override this to save requests.
    async fn deactivate_configurations(&self, configs: &[Configuration]) -> Vec<Result<Configuration, PsaError>> {
        let mut results = Vec::with_capacity(configs.len());
        for config in configs {
            results.push(self.deactivate_configuration(config).await);
        }
        results
    }

    /// Put the configuration back into `status` (rollback); returns its state afterwards.
    async fn set_configuration_status(&self, config_id: &str, status: &ConfigStatus)
    -> Result<Configuration, PsaError>;

    /// Put configurations back to these statuses (a rollback), at most
    /// [`Psa::update_batch_size`] at a time; one result per item, in order. One by one
    /// unless the PSA takes batches (HaloPSA).
    async fn restore_configurations(&self, statuses: &[(&str, &ConfigStatus)]) -> Vec<Result<Configuration, PsaError>> {
        let mut results = Vec::with_capacity(statuses.len());
        for (id, status) in statuses {
            results.push(self.set_configuration_status(id, status).await);
        }
        results
    }

    /// Check once, cheaply, that the PSA answers and accepts the credentials.
    async fn check_access(&self) -> Result<(), PsaError>;

    // ----- Contacts (workflow 001, docs/workflows.md#001-contact-deactivation) -----

    /// Every contact of the company, active and inactive, all pages.
    async fn list_contacts(&self, company_id: &str) -> Result<Vec<Contact>, PsaError>;

    /// One contact, fresh from the PSA.
    async fn contact(&self, id: &str) -> Result<Option<Contact>, PsaError>;

    /// Every primary-contact signal the PSA has for the company, each naming the field it
    /// came from. Company-level signals (ConnectWise `company.defaultContact`, HaloPSA main
    /// site `maincontact_id`) and contact-level ones (ConnectWise `defaultFlag`, Autotask
    /// `primaryContact`) alike; which one the UI calls "primary" is unconfirmed
    /// (docs/vendors/connectwise.md#unconfirmed-points), so the workflow reads them all.
    async fn primary_contacts(&self, company: &Company) -> Result<Vec<PrimaryContactSignal>, PsaError>;

    /// Set the contact active or inactive; returns its state afterwards.
    async fn set_contact_active(&self, contact: &Contact, active: bool) -> Result<Contact, PsaError>;

    // ----- Tickets -----

    /// The company's open tickets, all pages.
    async fn open_tickets(&self, company_id: &str) -> Result<Vec<Ticket>, PsaError>;

    /// One ticket, fresh from the PSA (open or closed).
    async fn ticket(&self, id: &str) -> Result<Option<Ticket>, PsaError>;

    /// Change a ticket's contact, owner and/or queue; returns its state afterwards.
    async fn update_ticket(&self, ticket_id: &str, change: &TicketAssignment) -> Result<Ticket, PsaError>;

    /// Open a ticket; returns it as created.
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, PsaError>;

    /// Add an internal note to a ticket.
    async fn add_ticket_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), PsaError>;

    /// Close the ticket: move it to the status the settings name as closed (ConnectWise
    /// `OFFRAMP_CW_CLOSED_TICKET_STATUS`, Autotask `AUTOTASK_TICKET_COMPLETE_STATUS`,
    /// HaloPSA `HALO_CLOSED_TICKET_STATUS_ID`; docs/vendors/ticket-close.md). Returns the
    /// ticket as the PSA has it afterwards; a ticket the PSA does not then report closed is
    /// an error, never a silent success.
    async fn close_ticket(&self, ticket_id: &str) -> Result<Ticket, PsaError>;

    // ----- Configuration contacts -----

    /// Whether configurations carry a contact this adapter can change (not on HaloPSA,
    /// whose assets have no documented contact field).
    fn supports_configuration_contacts(&self) -> bool {
        true
    }

    /// Point the configuration at another contact, or clear it (`None`); returns its state afterwards.
    async fn set_configuration_contact(
        &self,
        config_id: &str,
        contact_id: Option<&str>,
    ) -> Result<Configuration, PsaError>;
}

/// The audit trail. Append-only: nothing written is ever overwritten. Beside it, and
/// outside that rule, the store keeps leases and idempotency records (mutable, small,
/// see [`crate::domain::lease`]).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Write the operation header. `AuditError::AlreadyExists` if the id is taken.
    async fn create_operation(&self, operation: &OperationRecord) -> Result<(), AuditError>;

    /// Append a lifecycle event.
    async fn append_event(&self, event: &OperationEvent) -> Result<(), AuditError>;

    /// Write the pre-change snapshot. A snapshot of an item is written once per
    /// operation: writing the same (operation, item type, item id) again is
    /// `AuditError::AlreadyExists`, and the whole call writes nothing in that case.
    async fn put_snapshots(&self, snapshots: &[ItemSnapshot]) -> Result<(), AuditError>;

    /// Append item change records.
    async fn put_changes(&self, changes: &[ItemChange]) -> Result<(), AuditError>;

    /// Everything recorded for one operation, or `None`.
    async fn operation(&self, operation_id: &str) -> Result<Option<OperationDetail>, AuditError>;

    /// Operations, newest first.
    async fn list_operations(&self, filter: &OperationFilter) -> Result<Vec<OperationSummary>, AuditError>;

    /// The operations whose `parent_operation_id` is `parent_operation_id` (the rollbacks of
    /// an operation), oldest first; empty when there are none or the parent is unknown.
    ///
    /// Children are looked for among the operations on the parent's PSA company, which is
    /// where every child is: a rollback carries its original's PSA and company id. That keeps
    /// the query one company's operations long in both stores, with no index of its own.
    /// DynamoDB reads them from the `ByClient` index, which is eventually consistent: a child
    /// created a moment ago may take a moment to appear.
    async fn child_operations(&self, parent_operation_id: &str) -> Result<Vec<OperationRecord>, AuditError>;

    // ----- Leases: one run at a time per target (not append-only) -----

    /// Take the target's lease with one conditional write. It succeeds when no lease is
    /// stored, or the stored one has expired, or has the same holder (a re-take renews it),
    /// or `break_existing`. Otherwise [`AuditError::LeaseHeld`] naming the holder's
    /// operation and when its lease expires; nothing is written then.
    async fn acquire_lease(&self, request: &LeaseRequest) -> Result<Lease, AuditError>;

    /// Extend the lease to now + `ttl`, if the stored lease still has `lease.holder`;
    /// else [`AuditError::LeaseLost`]. An expired lease nobody took is still renewed.
    async fn renew_lease(&self, lease: &Lease, ttl: chrono::Duration) -> Result<Lease, AuditError>;

    /// Remove the lease if the stored one still has `lease.holder`. A lease already gone
    /// or taken over by another holder is left alone, and that is `Ok`.
    async fn release_lease(&self, lease: &Lease) -> Result<(), AuditError>;

    /// The target's lease as stored, expired or not.
    async fn current_lease(&self, target: &str) -> Result<Option<Lease>, AuditError>;

    // ----- Idempotency keys (not append-only; records expire) -----

    /// Write `record` as an in-progress claim with one conditional write: `Claimed` when no
    /// record of the key exists, or the stored one has expired (`expires_at`), or it is an
    /// in-progress claim whose `in_progress_until` has passed (a run that died). Otherwise
    /// `Existing` with the stored record, for the caller to compare `payload_hash` and
    /// `status`. The stored status is `InProgress` whatever `record.status` says.
    async fn claim_idempotency_key(&self, record: &IdempotencyRecord) -> Result<IdempotencyClaim, AuditError>;

    /// Store `record` as `Completed` (with its report), if the stored record is still an
    /// in-progress claim with the same `payload_hash`; else [`AuditError::IdempotencyKeyLost`].
    /// Touches only the idempotency record.
    async fn complete_idempotency_key(&self, record: &IdempotencyRecord) -> Result<(), AuditError>;

    /// Delete the key's in-progress claim (the run failed before changing anything), so the
    /// same request may be tried again at once. A completed record, or none, is left alone.
    async fn release_idempotency_key(&self, key: &str) -> Result<(), AuditError>;

    /// The record of `key` as stored (expired or not), or `None`; a read, never a claim. The
    /// HTTP API reads its acceptance and the finished run's report this way
    /// (docs/architecture.md#the-http-api). A store that cannot read one says so.
    async fn idempotency_record(&self, key: &str) -> Result<Option<crate::domain::IdempotencyRecord>, AuditError> {
        Err(AuditError::Unavailable { message: format!("this audit store cannot read the idempotency record {key}") })
    }
}

/// A documentation platform (IT Glue) as the organization deletion workflow (workflow 002,
/// docs/workflows.md#002-it-glue-organization-deletion) needs it.
#[async_trait]
pub trait DocPlatform: Send + Sync {
    /// The organization with this id, or `None`.
    async fn organization_by_id(&self, id: &str) -> Result<Option<crate::domain::Organization>, DocError>;

    /// Every organization of the account.
    async fn organizations(&self) -> Result<Vec<crate::domain::Organization>, DocError>;

    /// Organizations whose name equals `name`, ignoring case (compared here: the server's
    /// name filter semantics are UNCONFIRMED).
    async fn organizations_by_name(&self, name: &str) -> Result<Vec<crate::domain::Organization>, DocError>;

    /// Everything that depends on the organization, counted.
    async fn dependencies(&self, organization_id: &str) -> Result<crate::domain::DependencyCounts, DocError>;

    /// Ask for an export of the organization; returns it as requested.
    async fn request_export(&self, organization_id: &str) -> Result<crate::domain::Export, DocError>;

    /// An export, fresh.
    async fn export(&self, export_id: &str) -> Result<crate::domain::Export, DocError>;

    /// Mark the organization for deletion (asynchronous on IT Glue: it may still be
    /// readable for a while afterwards).
    async fn delete_organization(&self, organization_id: &str) -> Result<(), DocError>;

    /// The bytes of a finished export, read from its download link; at most `max_bytes`
    /// (a larger export is an error, nothing is kept). The platform's credentials go only
    /// to the platform's own host: a link elsewhere is fetched without them.
    async fn download_export(&self, export: &crate::domain::Export, max_bytes: usize) -> Result<Vec<u8>, DocError> {
        let _ = (export, max_bytes);
        Err(DocError::Configuration { message: "this documentation platform cannot download exports".into() })
    }
}

/// Where an IT Glue export is copied before its organization is deleted (S3 with Object
/// Lock when deployed, a local directory on a laptop): the copy a person restores from,
/// since IT Glue cannot undo a deletion and its download link expires.
#[async_trait]
pub trait ExportArchive: Send + Sync {
    /// Store the object under [`crate::domain::ExportObject::key`]; returns where it is,
    /// with the digest and size of what was stored. An error means the copy cannot be
    /// relied on.
    async fn store(&self, object: &crate::domain::ExportObject) -> Result<crate::domain::ArchivedExport, ArchiveError>;
}

/// Per-client settings with global defaults (the seed's "organizational variables").
/// Append-only like the rest of the trail: every `put` is a new version, the newest wins,
/// and the history says who changed what when.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The newest record of `key` for (`psa`, `scope`), where `scope` is a client id or
    /// [`crate::domain::GLOBAL_SCOPE`]; `None` if never set. A record whose value is
    /// `None` means the key was unset.
    async fn get_setting(&self, psa: &str, scope: &str, key: &str) -> Result<Option<SettingRecord>, AuditError>;

    /// Append a new version.
    async fn put_setting(&self, record: &SettingRecord) -> Result<(), AuditError>;

    /// The newest record of every key set for (`psa`, `scope`), sorted by key.
    async fn list_settings(&self, psa: &str, scope: &str) -> Result<Vec<SettingRecord>, AuditError>;
}

/// A delivery's claim in a [`DeliveryLog`]: its key and the owner token of the call that
/// claimed it, which only that call holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryClaim {
    pub key: String,
    pub owner: String,
}

/// Remembers which webhook deliveries were already handled (docs/architecture.md#psa-webhooks):
/// PSAs deliver again when an answer is slow or lost, and two deliveries of one event may
/// arrive at once. Implemented over the audit store's idempotency records (SQLite, DynamoDB:
/// `adapters::delivery_log::AuditDeliveryLog`) and in memory (`MemoryDeliveryLog`).
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Claim `key` for `ttl` with one conditional write: the claim when this is its first
    /// delivery (no record, or the record is older than its `ttl` and expired), `None` when
    /// it was seen within its time. Of two concurrent calls with one key, exactly one gets
    /// a claim. The claim's owner token is this call's own.
    async fn claim(&self, key: &str, ttl: std::time::Duration) -> Result<Option<DeliveryClaim>, AuditError>;

    /// [`Self::claim`], as a yes or no.
    async fn first_delivery(&self, key: &str, ttl: std::time::Duration) -> Result<bool, AuditError> {
        Ok(self.claim(key, ttl).await?.is_some())
    }

    /// Turn `claim` in place into the record of a handled delivery, kept for `ttl` from now,
    /// with one write conditional on the claim's owner token: the key is claimed without a
    /// gap from the first delivery's claim to the end of `ttl`, so no duplicate gets past
    /// [`Self::claim`] in between. [`AuditError::IdempotencyKeyLost`] when the stored record
    /// is no longer this claim (forgotten, or expired and claimed by another delivery).
    async fn keep(&self, claim: &DeliveryClaim, ttl: std::time::Duration) -> Result<(), AuditError>;

    /// Forget `key`: the delivery was recorded but could not be handed on (the execution did
    /// not start), so the PSA's next attempt must count as a first delivery again.
    async fn forget(&self, key: &str) -> Result<(), AuditError>;
}

/// Sends a notification (workflow 001, docs/workflows.md#001-contact-deactivation;
/// docs/vendors/microsoft-graph.md).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// How it sends, for reports: `graph-mail`, `webhook`.
    fn channel(&self) -> &'static str;

    /// Send one message to its recipients (a webhook has its own audience and ignores them).
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// Where credentials come from.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The value stored under `key` (e.g. `CONNECTWISE_PRIVATE_KEY`), if any.
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError>;

    /// Forget any cached value, so that the next `get` reads the store again: a vendor
    /// refused credentials that may just have been rotated. Nothing to do for a store
    /// that is read fresh every time.
    async fn refresh(&self) {}

    /// Whether values can change while the process runs (a store with rotation), so that
    /// clients should read their credentials through it instead of once at start.
    fn rotates(&self) -> bool {
        false
    }
}

/// Where a secret made by a run is kept when the operator asks for it (a leaver's new
/// password): AWS Secrets Manager when deployed; none on a laptop.
#[async_trait]
pub trait SecretVault: Send + Sync {
    /// Store `value` under `name` (a new version if the name exists). The answer names
    /// where it went; it never carries the value.
    async fn store(&self, name: &str, value: &SecretString, description: &str) -> Result<StoredSecret, SecretError>;
}

/// Where a [`SecretVault`] put a secret: enough to find it, never the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredSecret {
    /// The ARN (Secrets Manager) or name.
    pub reference: String,
    pub version_id: Option<String>,
}

/// Progress of a run, for a progress bar on a terminal. Workflows call it; it must not block.
pub trait Progress: Send + Sync {
    /// The run will process `total` items.
    fn start(&self, total: u64);
    /// One more item is done.
    fn item_done(&self);
    fn finish(&self);
}

/// A [`Progress`] that shows nothing (Lambda, `--json`, tests).
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn item_done(&self) {}
    fn finish(&self) {}
}
