//! The operation engine: the one lifecycle every destructive workflow runs through.
//!
//! ```text
//! validate ─► resolve target ─► plan ─► plan hash ─► gates ─┬─► answer with the plan (recorded)
//!                                                          │   dry run · plan changed ·
//!                                                          │   blast radius · approval/confirmation
//!                                                          ▼
//!                      lease on the target ─► snapshot ─► started ─► bounded apply
//!                      (one run at a time)    (before any  (bound     (change records in
//!                                              change)     approval)   batches, read-back)
//!                                                          ▼
//!                                   completed / failed ─► release the lease ─► report
//! resume: the same lease, the trail's records decide what is left; rollback: the
//! registry of restorers each workflow fills ([`restore`]).
//! ```
//!
//! A workflow supplies only its own domain logic: how to resolve its target, plan its
//! items, apply one item (or a batch), read an item back, restore an item, and shape its
//! seed report. Everything listed above lives here, once. See `docs/architecture.md`.

pub mod apply;
pub mod approval;
pub mod deadline;
pub mod gated;
pub mod idempotency;
pub mod lease;
pub mod plan;
pub mod records;
pub mod restore;
pub mod resume;

pub use apply::{Applied, UnitRecords, UnitStep, apply_units};
pub use approval::{ApprovalProof, ApprovalVia, BoundApproval, Consent, Gate, decide};
pub use deadline::{Continuation, Deadline};
pub use gated::{Admission, GatedPlan, Stopped, gate_then_apply};
pub use idempotency::{IdempotencyOptions, IdempotentReport, idempotent};
pub use lease::{LeaseOptions, with_lease};
pub use plan::{plan_hash, sort_key};
pub use records::{ChangeBatch, Recorder};
pub use restore::{Judgement, Restorable, RestoreRegistry};
