//! Preview, confirm, apply: the one path every command that changes data takes.
//!
//! A run that needs confirmation is first planned (a dry run) and shown; on a terminal
//! the engineer confirms it, and the request is then bound to exactly that plan (its hash
//! where the workflow has one) before it is applied. Without a terminal the CLI cannot ask:
//! it refuses, or, where the workflow itself answers an unconfirmed request with its plan
//! (contacts' `confirmation`, IT Glue's `confirm_delete`), lets the workflow refuse and
//! record that plan. Either way "not confirmed" exits with `ConfirmationRequired`'s code.

use std::io::{BufRead, IsTerminal, Write};

use offramp::error::{ErrorCode, Outcome};

/// What the engineer types to confirm a plan.
pub enum Question {
    /// `yes`, in any case.
    Yes(String),
    /// Exactly `expected` (an IT Glue organization's name: deletions cannot be undone).
    TypeBack { prompt: String, expected: String },
}

/// Where a plan shown on a terminal leads.
pub enum Next {
    Ask(Question),
    /// Nothing to confirm: exit with this code (nothing to change, or a refusal the real
    /// run would give anyway, explained on stderr).
    Stop(i32),
}

/// A command that changes data, as [`preview_confirm_apply`] drives it.
pub trait Destructive {
    type Report: Outcome;

    /// The run as requested must be confirmed first: not a dry run, not `--yes`, not
    /// carrying its own proof (an approved plan hash, the seed's confirmation, `--resume`).
    fn needs_confirmation(&self) -> bool;
    /// Without a terminal: the flags that would have confirmed the run (the CLI refuses),
    /// or `None` when the workflow itself refuses an unconfirmed request and records its plan.
    fn unattended_hint(&self) -> Option<&'static str>;
    /// The plan: the request as a dry run.
    async fn preview(&self) -> Self::Report;
    /// Decide, from the plan shown, what to ask (or why not to).
    fn next(&self, plan: &Self::Report) -> Next;
    /// Bind the request to the plan the engineer confirmed.
    fn confirm(&mut self, plan: &Self::Report);
    /// Run the request.
    async fn apply(&self) -> Self::Report;
    /// Show a report to a person (the plan, or the result).
    fn show(&self, report: &Self::Report);
    /// Print the result as asked (`--json`, or for a person).
    fn output(&self, report: &Self::Report);
}

/// The exit code of every "not confirmed", whatever the command.
pub fn not_confirmed() -> i32 {
    ErrorCode::ConfirmationRequired.exit_code()
}

fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Preview, confirm and apply `command`; the process exit code.
pub async fn preview_confirm_apply<C: Destructive>(mut command: C) -> i32 {
    if command.needs_confirmation() {
        if on_terminal() {
            let plan = command.preview().await;
            command.show(&plan);
            if !plan.succeeded() {
                return plan.exit_code();
            }
            match command.next(&plan) {
                Next::Stop(code) => return code,
                Next::Ask(question) if !ask(&question) => {
                    eprintln!("Not confirmed; nothing was changed.");
                    return not_confirmed();
                }
                Next::Ask(_) => command.confirm(&plan),
            }
        } else if let Some(flags) = command.unattended_hint() {
            eprintln!(
                "error [{}]: refusing to change data without confirmation: pass {flags}, or run in a terminal",
                ErrorCode::ConfirmationRequired
            );
            return not_confirmed();
        }
    }
    let report = command.apply().await;
    command.output(&report);
    report.exit_code()
}

/// Ask on the terminal; true when the answer confirms.
fn ask(question: &Question) -> bool {
    let (Question::Yes(prompt) | Question::TypeBack { prompt, .. }) = question;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    match question {
        Question::Yes(_) => line.trim().eq_ignore_ascii_case("yes"),
        Question::TypeBack { expected, .. } => line.trim() == expected,
    }
}
