//! The exit codes, as `offramp --help` lists them: built from the error-code table of the
//! library (`ErrorCode::exit_code`), so the help cannot drift from what the CLI returns.

use offramp::error::ErrorCode;

/// What each exit code stands for; the codes under it come from the table.
const CLASSES: &[(i32, &str)] = &[
    (0, "success (a dry run or plan that was asked for is a success)"),
    (1, "some items failed; the others were done (resume with --resume OPERATION_ID)"),
    (2, "usage error (unknown flag, missing argument)"),
    (3, "invalid input (a webhook: malformed or too large) or Offramp's own configuration"),
    (4, "not found (or not found exactly once)"),
    (5, "refused, nothing (more) changed: not confirmed, plan changed, guard, not offboarded, blocked"),
    (6, "permission denied by the vendor (a webhook: not authenticated)"),
    (7, "the PSA or IT Glue could not be reached or refused a read (or Step Functions did not start a chain)"),
    (8, "the audit trail is unavailable"),
    (9, "the PSA's request budget is spent (resume later with --resume)"),
    (10, "another run holds this client or operation"),
    (11, "the invocation's deadline came first: the run stopped cleanly (continue it with --resume)"),
];

/// The `Exit codes:` section of `offramp --help`.
pub fn help() -> String {
    let mut text = String::from("Exit codes:\n");
    for &(exit, meaning) in CLASSES {
        text.push_str(&format!("  {exit:>2}  {meaning}\n"));
        let codes: Vec<&str> = ErrorCode::ALL.iter().filter(|c| c.exit_code() == exit).map(|c| c.as_str()).collect();
        if !codes.is_empty() {
            text.push_str(&format!("      {}\n", codes.join(", ")));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exit code an error can produce is described, and 0 and 2 are not taken by one.
    #[test]
    fn every_exit_code_is_described() {
        for &code in ErrorCode::ALL {
            let exit = code.exit_code();
            assert!(CLASSES.iter().any(|&(e, _)| e == exit), "{code}: exit {exit} is not in --help");
            assert!(exit != 0 && exit != 2, "{code}: exit {exit} is reserved");
            assert!(help().contains(code.as_str()), "{code}");
        }
    }
}
