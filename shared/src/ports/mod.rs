//! Ports: the traits workflows are written against.
//!
//! Every trait is object safe (`async_trait`) so that entry points choose the
//! adapter at run time (`OFFRAMP_PSA`, `OFFRAMP_AUDIT_TABLE` or `OFFRAMP_AUDIT_DB`, …).

use async_trait::async_trait;

use crate::domain::{
    Company, ConfigStatus, Configuration, ContractSummary, ItemChange, ItemSnapshot, OffboardedCriteria,
    OperationDetail, OperationEvent, OperationFilter, OperationRecord, OperationSummary, PsaKind,
};
use crate::error::{AuditError, PsaError, SecretError};
use crate::secret::SecretString;

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

    /// Check once, cheaply, that the PSA answers and accepts the credentials.
    async fn check_access(&self) -> Result<(), PsaError>;
}

/// The audit trail. Append-only: nothing written is ever overwritten.
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
}

/// Where credentials come from.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The value stored under `key` (e.g. `CONNECTWISE_PRIVATE_KEY`), if any.
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError>;
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
