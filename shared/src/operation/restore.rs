//! How a rollback puts an item back, found through a registry that each workflow fills
//! with the item kinds it changes. The rollback itself knows no workflow: it reads an
//! operation's change records, asks the registry to turn each into a [`Restorable`], and
//! judges and restores them through that trait.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::domain::{ItemChange, ItemKind, Workflow};
use crate::error::{ErrorCode, OfframpError, PsaError};
use crate::ports::{Psa, async_trait};

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
        Judgement {
            verdict: Verdict::Conflict,
            current_label: "missing".into(),
            message: Some("the item no longer exists in the PSA".into()),
            current: None,
        }
    }

    /// Judge a field-like state: equal to `before` is restored, equal to what the
    /// operation `left` is to be restored, anything else a conflict.
    pub fn compare<S: PartialEq>(before: &S, left: &S, now: &S, label: String, left_label: String) -> Self {
        let (verdict, message) = if now == before {
            (Verdict::AlreadyRestored, None)
        } else if now == left {
            (Verdict::Restore, None)
        } else {
            let message =
                format!("changed since the operation: it left {left_label}, the PSA now has {label}; left alone");
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
    /// The code of a restore the PSA rejects: the same as the forward run's failed update.
    fn update_failed_code(&self) -> ErrorCode;
    /// Read the item fresh from the PSA and judge it.
    async fn judge(&self, psa: &dyn Psa) -> Result<Judgement, PsaError>;
    /// Put the state before the operation back; `current` is what `judge` read. Returns
    /// the state afterwards.
    async fn restore(&self, psa: &dyn Psa, current: &Value) -> Result<Value, PsaError>;

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
