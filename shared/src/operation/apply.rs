//! Bounded apply: units of work (one item, or a batch the vendor updates in one request)
//! run `concurrency` at a time; each item's result becomes a change record as it comes in.
//!
//! Write-ahead: the units go in windows of about [`INTENT_WINDOW`] items, and before a
//! window's first unit is sent, every item of the window is recorded as `intended`. After
//! a crash, an item with no record at all was never sent, so a resume never claims it;
//! only the window in flight is uncertain (docs/architecture.md#the-operation-engine).
//!
//! Three things stop a run early, all resumable: the audit trail refusing a write (the run
//! must not go on changing what the trail does not show), the vendor's request budget
//! being spent (later units are not sent at all, so the run ends cleanly instead of in a
//! storm of refusals), and the invocation's [`Deadline`]: checked before each window and
//! before each unit is sent, so the units in flight finish and are recorded, the rest are
//! not attempted, and the run ends with `DeadlineReached` for the next invocation to resume
//! (docs/architecture.md#runs-that-outlive-one-invocation).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use crate::domain::ItemChange;
use crate::error::{OfframpError, PsaError};
use crate::operation::deadline::Deadline;
use crate::operation::records::ChangeBatch;
use crate::ports::Progress;

/// Items whose intents are written together, before any of them is sent: one DynamoDB
/// transaction holds 100 items, and a crash leaves at most this many uncertain.
pub const INTENT_WINDOW: usize = 100;

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

/// How one item is recorded: its intent before it is sent (`None` for items that send
/// nothing, such as skips), and its result after.
pub struct UnitRecords<I, C> {
    pub intent: I,
    pub change: C,
}

/// Run `units` through `apply`, `concurrency` at a time, window by window, sending nothing
/// once `deadline` is reached; `records` says how an item's intent and result are recorded
/// (change records in batches of `changes`).
pub async fn apply_units<T, R, I, C, F, Fut>(
    units: Vec<Vec<T>>,
    concurrency: usize,
    deadline: Deadline,
    changes: &mut ChangeBatch<'_>,
    progress: &dyn Progress,
    records: UnitRecords<I, C>,
    apply: F,
) -> Applied<R>
where
    I: Fn(&T) -> Option<ItemChange>,
    C: Fn(&R) -> ItemChange,
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Vec<UnitStep<R>>>,
{
    progress.start(units.iter().map(Vec::len).sum::<usize>() as u64);
    let budget: Mutex<Option<PsaError>> = Mutex::new(None);
    let run = Run {
        concurrency,
        halted: AtomicBool::new(false),
        budget: &budget,
        deadline,
        timed_out: AtomicBool::new(false),
    };
    let mut applied = Applied::nothing();
    for window in windows(units) {
        if applied.stopped.is_none() && !run.halted.load(Ordering::SeqCst) && deadline.reached() {
            // Before the window's intents: nothing of it is in flight, nothing uncertain.
            run.timed_out.store(true, Ordering::SeqCst);
        }
        if applied.stopped.is_some() || run.halted.load(Ordering::SeqCst) || run.timed_out.load(Ordering::SeqCst) {
            applied.not_attempted += skip(&window, progress);
            continue;
        }
        let intents: Vec<ItemChange> = window.iter().flatten().filter_map(&records.intent).collect();
        if !intents.is_empty()
            && let Err(error) = changes.write_now(&intents).await
        {
            tracing::error!(error = %error, "audit trail refused the intents; stopping the run");
            applied.stopped = Some(error.into());
            applied.not_attempted += skip(&window, progress);
            continue;
        }
        run.window(window, changes, progress, &records.change, &apply, &mut applied).await;
    }
    if applied.stopped.is_none()
        && let Err(error) = changes.flush().await
    {
        tracing::error!(error = %error, "audit trail write failed at the end of the run");
        applied.stopped = Some(error.into());
    }
    if applied.stopped.is_none() {
        applied.stopped = budget.lock().unwrap_or_else(|e| e.into_inner()).take().map(Into::into);
    }
    if applied.stopped.is_none() && run.timed_out.load(Ordering::SeqCst) {
        tracing::info!(not_attempted = applied.not_attempted, "deadline reached; the run is to be continued");
        applied.stopped = Some(deadline.stop());
    }
    progress.finish();
    applied
}

/// Consecutive units holding about [`INTENT_WINDOW`] items each.
fn windows<T>(units: Vec<Vec<T>>) -> Vec<Vec<Vec<T>>> {
    let mut windows = Vec::new();
    let mut window = Vec::new();
    let mut items = 0;
    for unit in units {
        items += unit.len();
        window.push(unit);
        if items >= INTENT_WINDOW {
            windows.push(std::mem::take(&mut window));
            items = 0;
        }
    }
    if !window.is_empty() {
        windows.push(window);
    }
    windows
}

fn skip<T>(window: &[Vec<T>], progress: &dyn Progress) -> usize {
    let items = window.iter().map(Vec::len).sum::<usize>();
    (0..items).for_each(|_| progress.item_done());
    items
}

struct Run<'b> {
    concurrency: usize,
    halted: AtomicBool,
    budget: &'b Mutex<Option<PsaError>>,
    deadline: Deadline,
    /// Set once a unit was held back because the deadline was reached.
    timed_out: AtomicBool,
}

impl Run<'_> {
    /// One window's units, `concurrency` at a time; stops on a trail failure.
    async fn window<T, R, F, Fut>(
        &self,
        window: Vec<Vec<T>>,
        changes: &mut ChangeBatch<'_>,
        progress: &dyn Progress,
        record: &impl Fn(&R) -> ItemChange,
        apply: &F,
        applied: &mut Applied<R>,
    ) where
        F: Fn(Vec<T>) -> Fut,
        Fut: std::future::Future<Output = Vec<UnitStep<R>>>,
    {
        let mut stream = futures::stream::iter(window)
            .map(|unit| async move {
                if self.halted.load(Ordering::SeqCst) || self.out_of_time() {
                    return (unit.len(), Vec::new());
                }
                (0, apply(unit).await)
            })
            .buffer_unordered(self.concurrency.max(1));
        while let Some((skipped, steps)) = stream.next().await {
            applied.not_attempted += skipped;
            (0..skipped).for_each(|_| progress.item_done());
            for step in steps {
                progress.item_done();
                let result = match step {
                    UnitStep::Done(result) => result,
                    UnitStep::Halted(error) => {
                        applied.not_attempted += 1;
                        self.halt(error);
                        continue;
                    }
                };
                let change = record(&result);
                applied.results.push(result);
                if let Err(error) = changes.push(change).await {
                    // Updates in flight are dropped; a resume re-reads their state from the vendor.
                    tracing::error!(error = %error, "audit trail write failed; stopping the run");
                    applied.stopped = Some(error.into());
                    return;
                }
            }
        }
    }

    /// Whether the deadline holds this unit back (checked just before it would be sent).
    fn out_of_time(&self) -> bool {
        if self.timed_out.load(Ordering::SeqCst) {
            return true;
        }
        let reached = self.deadline.reached();
        if reached {
            self.timed_out.store(true, Ordering::SeqCst);
        }
        reached
    }

    fn halt(&self, error: PsaError) {
        if !self.halted.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %error, "request budget spent; stopping the run");
            *self.budget.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        }
    }
}
