//! What every CLI test needs: the `offramp` binary with exactly the environment an
//! engineer would set for one PSA of the sandbox, run off the async runtime.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::Path;
use std::process::{Command, Output, Stdio};

use offramp_sandbox::{
    AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY,
    HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT, Sandbox,
};
use serde_json::Value;

pub const INITIATED_BY: &str = "cli-test@msp.example";
/// The OS user the tests run the CLI as (`USER`).
pub const OS_USER: &str = "cli-tester";
/// `initiated_by` as the trail records it: the OS user, on behalf of `--initiated-by`
/// (docs/architecture.md#who-is-asking).
pub const RECORDED_INITIATOR: &str = "cli:cli-tester (on behalf of cli-test@msp.example)";

/// `command` (the binary, or `script` around it) with a cleared environment, the sandbox's
/// credentials for `psa` (`connectwise`, `autotask` or `halo`), and a SQLite audit trail.
pub fn with_env(mut command: Command, sandbox: &Sandbox, psa: &str, audit_db: &Path) -> Command {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OFFRAMP_PSA", psa)
        .env("OFFRAMP_AUDIT_DB", audit_db)
        // IT Glue exports are archived beside the trail, never in the working directory.
        .env("OFFRAMP_EXPORT_DIR", audit_db.with_file_name("exports"))
        .env("OFFRAMP_INITIATED_BY", INITIATED_BY)
        .env("USER", OS_USER)
        // A requester in the MSP's own domain may be sent the notification.
        .env("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "msp.example")
        .stdin(Stdio::null());
    match psa {
        "connectwise" => command
            .env("CONNECTWISE_URL", sandbox.connectwise_url())
            .env("CONNECTWISE_COMPANY_ID", CW_COMPANY_ID)
            .env("CONNECTWISE_PUBLIC_KEY", CW_PUBLIC_KEY)
            .env("CONNECTWISE_PRIVATE_KEY", CW_PRIVATE_KEY)
            .env("CONNECTWISE_CLIENT_ID", CW_CLIENT_ID)
            // Pacing on, above what the sandbox serves (as in tests/support).
            .env("CONNECTWISE_RATE_LIMIT", "2000")
            // What "offboarded" means is configured, as an engineer would (README "Offboarded
            // criteria"); Autotask and HaloPSA default to the inactive flag.
            .env("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded"),
        "autotask" => command
            .env("AUTOTASK_ZONE_LOOKUP_URL", sandbox.autotask_zone_lookup_url())
            .env("AUTOTASK_USERNAME", AT_USERNAME)
            .env("AUTOTASK_SECRET", AT_SECRET)
            .env("AUTOTASK_INTEGRATION_CODE", AT_INTEGRATION_CODE),
        "halo" => command
            .env("HALO_URL", sandbox.halo_url())
            .env("HALO_TENANT", HALO_TENANT)
            .env("HALO_CLIENT_ID", HALO_CLIENT_ID)
            .env("HALO_CLIENT_SECRET", HALO_CLIENT_SECRET),
        other => panic!("no environment for {other}"),
    };
    command
}

/// The `offramp` binary for `psa`.
pub fn offramp_for(sandbox: &Sandbox, psa: &str, audit_db: &Path) -> Command {
    with_env(Command::new(env!("CARGO_BIN_EXE_offramp")), sandbox, psa, audit_db)
}

/// Run to the end on a blocking thread, so the sandbox (on the test's runtime) keeps serving.
pub async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run offramp")).await.unwrap()
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
