//! Carrying out a plan, once the engine has written the header, every task's snapshot and
//! `started`: phase after phase through the engine's bounded apply (intents written before
//! anything is sent), a ticket note per phase, the read-back, the manager's notification
//! and the summary note. A fresh run and a resume go through the same [`Run::carry_out`].

use serde_json::json;

use super::plan::{Phase, System};
use super::read::Leaver;
use super::report::{OffboardStatus, OffboardUserReport, TaskResult};
use super::run::Run;
use super::tasks::{self, Sent};
use super::ticket::{Documented, Ticketing};
use super::verify;
use crate::domain::{ItemChange, OperationEventKind};
use crate::error::OfframpError;
use crate::operation::records::CHANGE_BATCH;
use crate::operation::{Applied, ChangeBatch, Recorder, UnitRecords, UnitStep, apply_units};
use crate::ports::NoProgress;

impl Run<'_, '_> {
    /// A fresh run: every task is due; the ticket is the one given, or a new one.
    pub async fn fresh(
        self,
        leaver: Leaver,
        ticket: Option<String>,
        report: &mut OffboardUserReport,
    ) -> Result<(), OfframpError> {
        report.plan(self.plan);
        let due = (0..self.plan.tasks.len()).collect();
        let documented = Documented { ticket_id: ticket, ..Documented::default() };
        let manager = leaver.state.manager.clone();
        self.carry_out(due, documented, manager, report).await
    }

    /// Send the `due` tasks phase by phase, then verify, notify and sum up. `documented`
    /// says which notes and notifications an earlier run of the operation already made.
    pub async fn carry_out(
        &self,
        due: Vec<usize>,
        documented: Documented,
        manager: Option<crate::ports::DirectoryUser>,
        report: &mut OffboardUserReport,
    ) -> Result<(), OfframpError> {
        report.status = OffboardStatus::Completed;
        let mut changes = ChangeBatch::new(self.deps.audit, CHANGE_BATCH);
        let mut ticketing = Ticketing::open(self, documented, &mut changes, report).await;
        let mut stopped = None;
        for phase in Phase::ALL {
            let phase_due: Vec<usize> = due.iter().copied().filter(|i| self.plan.tasks[*i].phase == phase).collect();
            if phase_due.is_empty() {
                continue;
            }
            if stopped.is_some() {
                phase_due.iter().for_each(|i| report.tasks[*i].result = TaskResult::NotAttempted);
                continue;
            }
            let applied = self.phase(phase_due.clone(), &mut changes).await;
            record_results(report, &phase_due, &applied);
            ticketing.phase_note(self, phase, &mut changes, report).await;
            stopped = applied.stopped;
        }
        if stopped.is_none() {
            verify::verify(self, report).await;
            ticketing.notify(self, manager.as_ref(), &mut changes, report).await;
        }
        ticketing.summary(self, &mut changes, report).await;
        self.end(changes, stopped, report).await
    }

    /// One phase's tasks through the engine's bounded apply: directory changes in batches,
    /// the others one per unit.
    async fn phase(&self, due: Vec<usize>, changes: &mut ChangeBatch<'_>) -> Applied<Sent> {
        let tasks = &self.plan.tasks;
        let (skipped, sent): (Vec<usize>, Vec<usize>) = due.into_iter().partition(|i| tasks[*i].skip.is_some());
        let (directory, others): (Vec<usize>, Vec<usize>) =
            sent.into_iter().partition(|i| tasks[*i].op.system() == System::Directory);
        let (onprem, others): (Vec<usize>, Vec<usize>) =
            others.into_iter().partition(|i| tasks[*i].op.system() == System::OnPrem);
        let mut units: Vec<Vec<usize>> = skipped.into_iter().map(|i| vec![i]).collect();
        units.extend(directory.chunks(self.deps.options.directory_batch.clamp(1, 20)).map(<[usize]>::to_vec));
        // A phase's AD tasks go as one unit, in plan order, on the account found once.
        if !onprem.is_empty() {
            units.push(onprem);
        }
        units.extend(others.into_iter().map(|i| vec![i]));
        let records = UnitRecords {
            intent: |i: &usize| {
                let task = &tasks[*i];
                task.skip
                    .is_none()
                    .then(|| ItemChange::intent(self.target.operation_id, task.kind, &task.id, &task.name))
            },
            change: |sent: &Sent| sent.change.clone(),
        };
        let concurrency = self.deps.options.concurrency;
        let deadline = crate::operation::Deadline::none();
        apply_units(units, concurrency, deadline, changes, &NoProgress, records, |unit| self.send(unit)).await
    }

    async fn send(&self, unit: Vec<usize>) -> Vec<UnitStep<Sent>> {
        let tasks = &self.plan.tasks;
        let target = &self.target;
        let Some(first) = unit.first().map(|i| &tasks[*i]) else { return Vec::new() };
        let sent = if first.skip.is_some() {
            unit.iter().map(|i| tasks::skipped(target, *i, &tasks[*i])).collect()
        } else {
            match first.op.system() {
                System::Directory => {
                    let batch = unit.iter().map(|i| (*i, &tasks[*i])).collect();
                    tasks::send_directory(self.deps, target, batch).await
                }
                System::Mailboxes => vec![tasks::send_mailbox(self.deps, target, unit[0], first).await],
                System::Psa => vec![tasks::send_psa(self.deps, target, unit[0], first).await],
                System::Owner => vec![tasks::send_owner(self.deps, target, unit[0], first).await],
                System::OnPrem => {
                    let batch = unit.iter().map(|i| (*i, &tasks[*i])).collect();
                    super::tasks_onprem::send_onprem(self.deps, target, batch).await
                }
            }
        };
        sent.into_iter().map(UnitStep::Done).collect()
    }

    /// The run's last event: completed (with the counts), or failed where it stopped.
    async fn end(
        &self,
        mut changes: ChangeBatch<'_>,
        stopped: Option<OfframpError>,
        report: &mut OffboardUserReport,
    ) -> Result<(), OfframpError> {
        let recorder = Recorder::new(self.deps.audit, self.target.operation_id);
        if let Err(error) = changes.flush().await {
            report.warnings.push(format!("the last change records could not be written: {error}"));
        }
        report.finish();
        if let Some(error) = stopped {
            let detail = json!({ "code": error.code(), "message": error.to_string(), "summary": report.summary });
            recorder.event(OperationEventKind::Failed, detail).await.ok();
            return Err(error);
        }
        let detail = json!({ "status": report.status, "summary": report.summary, "ticket_id": report.ticket_id });
        recorder.event(OperationEventKind::Completed, detail).await?;
        Ok(())
    }
}

/// Each sent task's result into its report entry; a task the run did not get to is
/// `not_attempted`.
fn record_results(report: &mut OffboardUserReport, due: &[usize], applied: &Applied<Sent>) {
    for i in due {
        report.tasks[*i].result = TaskResult::NotAttempted;
    }
    for sent in &applied.results {
        let entry = &mut report.tasks[sent.index];
        entry.result = match sent.change.outcome {
            crate::domain::ItemOutcome::Skipped => TaskResult::Skipped,
            crate::domain::ItemOutcome::Uncertain => TaskResult::Uncertain,
            _ if sent.failure.is_some() => TaskResult::Failed,
            _ => TaskResult::Done,
        };
        if let Some(failure) = &sent.failure {
            entry.error_code = Some(failure.code);
            entry.vendor_code = failure.vendor_code.clone();
            entry.message = Some(failure.message.clone());
            report.errors.push(super::report::ReportError {
                code: failure.code,
                message: format!("{} ({}): {}", entry.action, entry.target, failure.message),
                action: Some(entry.action),
            });
        }
        if let Some(note) = &sent.note {
            entry.message = Some(note.clone());
        }
    }
}
