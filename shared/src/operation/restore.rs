//! How a rollback puts an item back, found through a registry that each workflow fills
//! with the item kinds it changes. The rollback itself knows no workflow: it reads an
//! operation's change records, asks the registry to turn each into a [`Restorable`], and
//! judges and restores them through that trait.
//!
//! A restorer reaches the systems it puts things back in through [`RestoreSystems`]: the
//! PSA always, the directory and the mailboxes of Microsoft 365 when the process that runs
//! the rollback has them configured (docs/architecture.md#restore-context). A restorer
//! whose system is missing answers [`RestoreError::NotConfigured`]: that item fails with
//! `ConfigurationError`, the others go on.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::domain::{ItemChange, ItemKind, Workflow};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::ports::{CloudDirectory, DirectoryError, Mailboxes, OnPremDirectory, Psa, async_trait};

/// The systems a rollback can put items back in. The PSA is always there (a rollback is
/// refused before it starts without one); Microsoft 365 only where it is configured
/// (`MS_CLIENT_ID`): a PSA rollback never needs it.
#[derive(Clone, Copy)]
pub struct RestoreSystems<'a> {
    pub psa: &'a dyn Psa,
    /// Entra ID (Graph), for user accounts, managers, memberships, licences.
    pub directory: Option<&'a dyn CloudDirectory>,
    /// Exchange Online, for mailbox type, forwarding, address-list visibility.
    pub mailboxes: Option<&'a dyn Mailboxes>,
    /// On-premises AD, for AD accounts, their groups, manager and OU.
    pub onprem: Option<&'a dyn OnPremDirectory>,
}

impl<'a> RestoreSystems<'a> {
    /// The PSA alone (Microsoft 365 not configured).
    pub fn psa_only(psa: &'a dyn Psa) -> Self {
        RestoreSystems { psa, directory: None, mailboxes: None, onprem: None }
    }

    /// The directory, or the error that fails this item when it is not configured.
    pub fn directory(&self) -> Result<&'a dyn CloudDirectory, RestoreError> {
        self.directory.ok_or(RestoreError::NotConfigured(MissingSystem::Directory))
    }

    /// The mailboxes, or the error that fails this item when they are not configured.
    pub fn mailboxes(&self) -> Result<&'a dyn Mailboxes, RestoreError> {
        self.mailboxes.ok_or(RestoreError::NotConfigured(MissingSystem::Mailboxes))
    }

    /// On-premises AD, or the error that fails this item when it is not configured.
    pub fn onprem(&self) -> Result<&'a dyn OnPremDirectory, RestoreError> {
        self.onprem.ok_or(RestoreError::NotConfigured(MissingSystem::OnPrem))
    }
}

/// A system a restorer needs that the running process was not configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingSystem {
    Directory,
    Mailboxes,
    OnPrem,
}

impl std::fmt::Display for MissingSystem {
    /// Names what is missing and the settings that would make it there
    /// (`adapters::graph::M365Settings`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let system = match self {
            MissingSystem::Directory => "Entra ID",
            MissingSystem::Mailboxes => "Exchange Online",
            MissingSystem::OnPrem => {
                return write!(
                    f,
                    "on-premises AD is not configured (AD_LDAP_URL, AD_BIND_DN, AD_BIND_PASSWORD, AD_BASE_DN): this \
                     item lives in AD and was not restored; configure it and roll back again"
                );
            }
        };
        write!(
            f,
            "Microsoft 365 is not configured (MS_CLIENT_ID, MS_CLIENT_SECRET; MS_LOGIN_URL, GRAPH_URL, EXO_URL \
             optional): this item lives in {system} and was not restored; configure it and roll back again"
        )
    }
}

/// Why an item could not be judged or put back.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Psa(#[from] PsaError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    NotConfigured(MissingSystem),
}

impl RestoreError {
    /// The code of a read that failed (judging an item): the rollback stops on it, except
    /// [`RestoreError::NotConfigured`], which only fails its item.
    pub fn code(&self) -> ErrorCode {
        match self {
            RestoreError::Psa(error) => error.code(),
            RestoreError::Directory(error) => directory_code(error, ErrorCode::DirectoryConnectionError),
            RestoreError::NotConfigured(_) => ErrorCode::ConfigurationError,
        }
    }

    /// The code of one item's failed restore: as [`PsaError::write_failure_code`] for the
    /// PSA; for Microsoft 365 the vendor refusing this item (not found, mastered
    /// on-premises, refused) is the item's `update_failed`, while permission and transport
    /// problems keep their own codes, since every other item will meet them too.
    pub fn write_failure_code(&self, update_failed: ErrorCode) -> ErrorCode {
        match self {
            RestoreError::Psa(error) => error.write_failure_code(update_failed),
            RestoreError::Directory(error) => directory_code(error, update_failed),
            RestoreError::NotConfigured(_) => ErrorCode::ConfigurationError,
        }
    }
}

/// A directory error's code; `refused` for what the vendor refused about this one item.
fn directory_code(error: &DirectoryError, refused: ErrorCode) -> ErrorCode {
    match error {
        DirectoryError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DirectoryError::Configuration { .. } => ErrorCode::ConfigurationError,
        DirectoryError::Throttled { .. }
        | DirectoryError::Connection { .. }
        | DirectoryError::InvalidResponse { .. } => ErrorCode::DirectoryConnectionError,
        DirectoryError::NotFound { .. }
        | DirectoryError::OnPremisesMastered { .. }
        | DirectoryError::Refused { .. } => refused,
    }
}

impl From<RestoreError> for OfframpError {
    /// A PSA error stays one (its code and message as before); the others keep their code.
    fn from(error: RestoreError) -> Self {
        match error {
            RestoreError::Psa(error) => OfframpError::Psa(error),
            other => OfframpError::new(other.code(), other.to_string()),
        }
    }
}

/// What a rollback finds when it compares an item's current state with the state before
/// the operation and the state the operation left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Still as the operation left it: put `before` back.
    Restore,
    /// Already as it was before (someone, or an earlier rollback, put it back).
    AlreadyRestored,
    /// Changed by someone since: left alone, never guessed.
    Conflict,
}

/// An item's judgement, with the state it was judged on.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The current state in words, for the report (`active`, `contact 5001`, `missing`).
    pub current_label: String,
    pub message: Option<String>,
    /// The current state as read (the rollback's snapshot), `None` when the item is gone.
    pub current: Option<Value>,
}

impl Judgement {
    pub fn missing() -> Self {
        Self::missing_from("the PSA")
    }

    /// The item is gone from `system` (`"Entra ID"`, `"Exchange Online"`).
    pub fn missing_from(system: &str) -> Self {
        Judgement {
            verdict: Verdict::Conflict,
            current_label: "missing".into(),
            message: Some(format!("the item no longer exists in {system}")),
            current: None,
        }
    }

    /// Judge a field-like state: equal to `before` is restored, equal to what the
    /// operation `left` is to be restored, anything else a conflict.
    pub fn compare<S: PartialEq>(before: &S, left: &S, now: &S, label: String, left_label: String) -> Self {
        Self::compare_in("the PSA", before, left, now, label, left_label)
    }

    /// [`Judgement::compare`] for an item of `system` (`"Entra ID"`), which a conflict's
    /// message names.
    pub fn compare_in<S: PartialEq>(
        system: &str,
        before: &S,
        left: &S,
        now: &S,
        label: String,
        left_label: String,
    ) -> Self {
        let (verdict, message) = if now == before {
            (Verdict::AlreadyRestored, None)
        } else if now == left {
            (Verdict::Restore, None)
        } else {
            let message =
                format!("changed since the operation: it left {left_label}, {system} now has {label}; left alone");
            (Verdict::Conflict, Some(message))
        };
        Judgement { verdict, current_label: label, message, current: None }
    }

    pub fn with_current(mut self, current: Value) -> Self {
        self.current = Some(current);
        self
    }
}

/// One item an operation changed, able to be judged and put back.
#[async_trait]
pub trait Restorable: Send + Sync {
    fn kind(&self) -> ItemKind;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    /// What the rollback puts back, in words.
    fn restore_to(&self) -> String;
    /// The code of a restore its system rejects: the same as the forward run's failed update.
    fn update_failed_code(&self) -> ErrorCode;
    /// Read the item fresh from its system and judge it. A system that is not configured
    /// (`systems.directory()?`) fails this item only; any other error stops the rollback
    /// before it restores anything.
    async fn judge(&self, systems: &RestoreSystems<'_>) -> Result<Judgement, RestoreError>;
    /// Put the state before the operation back; `current` is what `judge` read. Returns
    /// the state afterwards.
    async fn restore(&self, systems: &RestoreSystems<'_>, current: &Value) -> Result<Value, RestoreError>;

    /// The company whose listing holds this item, for kinds with a [`Lister`]: a rollback
    /// of many items of one company reads them with one listing instead of one read each.
    fn listed_under(&self) -> Option<&str> {
        None
    }

    /// Judge on the item as a listing showed it (`None`: read it on its own instead).
    fn judge_listed(&self, _listed: &Value) -> Option<Judgement> {
        None
    }

    /// This item as `Any`, for a kind's [`BatchRestore`] to see its own type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Every item of `kind` a company has, by id, as JSON the kind's `judge_listed` reads.
pub type Lister = for<'a> fn(&'a dyn Psa, &'a str) -> BoxFuture<'a, Result<HashMap<String, Value>, PsaError>>;

/// Restore several items of one kind in one request where the PSA takes batches
/// (`Psa::update_batch_size`); one result per item, in order.
pub type BatchRestore = for<'a> fn(&'a dyn Psa, Vec<&'a dyn Restorable>) -> BoxFuture<'a, Vec<Result<Value, PsaError>>>;

/// Turns a `Changed` record of one item kind into its [`Restorable`]; `Ok(None)` for a
/// record that changed nothing a rollback can put back.
pub type RestoreParser = fn(&ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError>;

/// Whether an operation of a workflow may be rolled back.
#[derive(Debug, Clone)]
pub enum Reversibility {
    Reversible,
    /// Refused, with the reason the report gives (`{id}` is replaced by the operation id).
    Irreversible(&'static str),
}

/// The registry: item kinds to parsers, workflows to whether they can be undone.
#[derive(Default)]
pub struct RestoreRegistry {
    parsers: HashMap<ItemKind, RestoreParser>,
    workflows: HashMap<Workflow, Reversibility>,
    /// Item kinds that stay as records of what happened (notes, notifications).
    kept: Vec<ItemKind>,
    listers: HashMap<ItemKind, Lister>,
    batches: HashMap<ItemKind, BatchRestore>,
}

impl RestoreRegistry {
    pub fn register_item(&mut self, kind: ItemKind, parser: RestoreParser) -> &mut Self {
        self.parsers.insert(kind, parser);
        self
    }

    pub fn register_workflow(&mut self, workflow: Workflow, reversibility: Reversibility) -> &mut Self {
        self.workflows.insert(workflow, reversibility);
        self
    }

    /// Item kinds a rollback leaves in place on purpose (it says so in its report).
    pub fn keep_as_record(&mut self, kind: ItemKind) -> &mut Self {
        self.kept.push(kind);
        self
    }

    /// How items of `kind` are read a company at a time.
    pub fn register_lister(&mut self, kind: ItemKind, lister: Lister) -> &mut Self {
        self.listers.insert(kind, lister);
        self
    }

    /// How items of `kind` are restored several at a time.
    pub fn register_batch(&mut self, kind: ItemKind, restore: BatchRestore) -> &mut Self {
        self.batches.insert(kind, restore);
        self
    }

    pub fn lister(&self, kind: ItemKind) -> Option<Lister> {
        self.listers.get(&kind).copied()
    }

    pub fn batch(&self, kind: ItemKind) -> Option<BatchRestore> {
        self.batches.get(&kind).copied()
    }

    pub fn reversibility(&self, workflow: Workflow) -> Option<&Reversibility> {
        self.workflows.get(&workflow)
    }

    pub fn is_kept_record(&self, kind: ItemKind) -> bool {
        self.kept.contains(&kind)
    }

    /// The restorable for a change record; `None` when its kind has no restorer.
    pub fn parse(&self, change: &ItemChange) -> Result<Option<Box<dyn Restorable>>, OfframpError> {
        match self.parsers.get(&change.item_type) {
            Some(parse) => parse(change),
            None => Ok(None),
        }
    }
}

/// Read a recorded state back into its type; a record that does not parse is the trail's fault.
pub fn parse_state<T: serde::de::DeserializeOwned>(value: &Value, change: &ItemChange) -> Result<T, OfframpError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        OfframpError::new(
            ErrorCode::AuditStoreError,
            format!("change record of {} {}: {e}", change.item_type, change.item_id),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PSA error keeps the codes it always had (the existing rollback reports); a
    /// directory refusal of one item is that item's failure, permission and transport keep
    /// their own codes; a missing system is the deployment's (`ConfigurationError`).
    #[test]
    fn restore_errors_keep_the_psa_codes_and_map_the_directory_ones() {
        let rejected = RestoreError::from(PsaError::Rejected { status: 422, code: None, message: "no".into() });
        assert_eq!(rejected.write_failure_code(ErrorCode::ContactUpdateFailed), ErrorCode::ContactUpdateFailed);
        assert_eq!(OfframpError::from(rejected).code(), ErrorCode::PsaConnectionError);
        let directory = |error: DirectoryError| RestoreError::from(error).write_failure_code(ErrorCode::ActionFailed);
        let refused = DirectoryError::Refused { status: 400, code: "Request_BadRequest".into(), message: "x".into() };
        assert_eq!(directory(refused), ErrorCode::ActionFailed);
        let synced = DirectoryError::OnPremisesMastered { code: "x".into(), message: "x".into() };
        assert_eq!(directory(synced), ErrorCode::ActionFailed);
        let denied =
            DirectoryError::PermissionDenied { code: "Authorization_RequestDenied".into(), message: "x".into() };
        assert_eq!(directory(denied), ErrorCode::PermissionDenied);
        assert_eq!(directory(DirectoryError::Throttled { message: "x".into() }), ErrorCode::DirectoryConnectionError);
        let down = RestoreError::from(DirectoryError::Connection { message: "reset".into() });
        assert_eq!(OfframpError::from(down).code(), ErrorCode::DirectoryConnectionError);
        let missing = RestoreError::NotConfigured(MissingSystem::Mailboxes);
        assert_eq!(missing.write_failure_code(ErrorCode::ActionFailed), ErrorCode::ConfigurationError);
        assert!(missing.to_string().starts_with("Microsoft 365 is not configured (MS_CLIENT_ID"), "{missing}");
        assert!(missing.to_string().contains("Exchange Online"), "{missing}");
    }
}
