//! Bounded apply: units of work (one item, or a batch the vendor updates in one request)
//! run `concurrency` at a time; each item's result becomes a change record as it comes in.
//!
//! Two things stop a run early, both resumable: the audit trail refusing a write (the run
//! must not go on changing what the trail does not show) and the vendor's request budget
//! being spent (later units are not sent at all, so the run ends cleanly instead of in a
//! storm of refusals).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use crate::domain::ItemChange;
use crate::error::{OfframpError, PsaError};
use crate::operation::records::ChangeBatch;
use crate::ports::Progress;

/// What became of one item of a unit.
pub enum UnitStep<R> {
    /// Attempted (changed, skipped or failed): recorded.
    Done(R),
    /// Not sent: the vendor's request budget was spent before its turn.
    Halted(PsaError),
}

/// The results of [`apply_units`].
pub struct Applied<R> {
    pub results: Vec<R>,
    /// Items not attempted because the run stopped first.
    pub not_attempted: usize,
    /// Why the run stopped early, if it did; it can be resumed.
    pub stopped: Option<OfframpError>,
}

impl<R> Applied<R> {
    pub fn nothing() -> Self {
        Self { results: Vec::new(), not_attempted: 0, stopped: None }
    }
}

/// Run `units` through `apply`, `concurrency` at a time; `record` turns a result into its
/// change record, written in batches of `audit_batch`.
pub async fn apply_units<T, R, F, Fut>(
    units: Vec<Vec<T>>,
    concurrency: usize,
    changes: &mut ChangeBatch<'_>,
    progress: &dyn Progress,
    record: impl Fn(&R) -> ItemChange,
    apply: F,
) -> Applied<R>
where
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Vec<UnitStep<R>>>,
{
    progress.start(units.iter().map(Vec::len).sum::<usize>() as u64);
    let halted = AtomicBool::new(false);
    let budget: Mutex<Option<PsaError>> = Mutex::new(None);
    let (halted, budget, apply) = (&halted, &budget, &apply);
    let mut stream = futures::stream::iter(units)
        .map(|unit| async move {
            if halted.load(Ordering::SeqCst) {
                return (unit.len(), Vec::new());
            }
            let steps = apply(unit).await;
            (0, steps)
        })
        .buffer_unordered(concurrency.max(1));

    let mut applied = Applied::nothing();
    'outer: while let Some((skipped, steps)) = stream.next().await {
        applied.not_attempted += skipped;
        (0..skipped).for_each(|_| progress.item_done());
        for step in steps {
            progress.item_done();
            let result = match step {
                UnitStep::Done(result) => result,
                UnitStep::Halted(error) => {
                    applied.not_attempted += 1;
                    if !halted.swap(true, Ordering::SeqCst) {
                        tracing::warn!(error = %error, "request budget spent; stopping the run");
                        *budget.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                    }
                    continue;
                }
            };
            let change = record(&result);
            applied.results.push(result);
            if let Err(error) = changes.push(change).await {
                // Updates in flight are dropped; a resume re-reads their state from the vendor.
                tracing::error!(error = %error, "audit trail write failed; stopping the run");
                applied.stopped = Some(error.into());
                break 'outer;
            }
        }
    }
    drop(stream);
    if applied.stopped.is_none()
        && let Err(error) = changes.flush().await
    {
        tracing::error!(error = %error, "audit trail write failed at the end of the run");
        applied.stopped = Some(error.into());
    }
    if applied.stopped.is_none() {
        applied.stopped = budget.lock().unwrap_or_else(|e| e.into_inner()).take().map(Into::into);
    }
    progress.finish();
    applied
}
