//! `make chaos` (`offramp-bench crashes [ITEMS] [KILLS] [SEED]`), and a small version in
//! `make test` (integration `chaos::` module): the `offramp` CLI killed
//! with SIGKILL at KILLS seeded random points of an ITEMS-configuration deactivation
//! against the `offramp-sandbox` binary (ConnectWise, SQLite audit file), each kill followed
//! by `--resume` (with `--break-lease`: the operator knows the process is dead), and a last
//! resume that must finish. A kill point is a number of configuration writes the sandbox
//! has applied: the CLI is killed as soon as the sandbox counts that many (so the points are
//! reproducible by seed, give or take the writes in flight when the count is read).
//!
//! Checked at the end, from the sandbox and the trail, not from any report: every resume
//! completed (killed by us, or exit 0), every configuration is inactive in the sandbox and
//! the trail's latest record of each says it was changed (or, for one in flight at a kill
//! and found done by the resume, `uncertain`); each was written exactly once (the
//! sandbox's count of update attempts per configuration and its count of applied writes).
//! Exit status 1 otherwise.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sandbox_process::SandboxProcess;

fn start_sandbox(bin: &Path, items: usize) -> SandboxProcess {
    SandboxProcess::start(bin, items, &[])
}

/// The ConnectWise credentials of the sandbox's ready line, as the CLI reads them.
fn connectwise_env(ready: &Value) -> Vec<(&'static str, String)> {
    let cw = &ready["connectwise"];
    let text = |key: &str| cw[key].as_str().unwrap_or_default().to_string();
    vec![
        ("OFFRAMP_PSA", "connectwise".into()),
        ("CONNECTWISE_URL", text("url")),
        ("CONNECTWISE_COMPANY_ID", text("company_id")),
        ("CONNECTWISE_PUBLIC_KEY", text("public_key")),
        ("CONNECTWISE_PRIVATE_KEY", text("private_key")),
        ("CONNECTWISE_CLIENT_ID", text("client_id")),
        // What "offboarded" means on ConnectWise is configured (no default).
        ("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".into()),
    ]
}

/// What a crash run measured.
pub struct CrashRun {
    pub items: usize,
    pub kills: usize,
    pub resumes: usize,
    pub resumes_completed: usize,
    pub wall_s: f64,
    pub lost: usize,
    pub written_twice: usize,
    pub trail_mismatches: usize,
    pub uncertain: usize,
}

impl CrashRun {
    pub fn ok(&self) -> bool {
        self.resumes_completed == self.resumes
            && self.lost == 0
            && self.written_twice == 0
            && self.trail_mismatches == 0
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut x = *state;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `kills` distinct write counts in 1..items, ascending, from `seed`.
pub fn kill_points(items: usize, kills: usize, seed: u64) -> Vec<u64> {
    let mut state = seed;
    let mut points = std::collections::BTreeSet::new();
    while points.len() < kills.min(items.saturating_sub(1)) {
        points.insert(1 + splitmix(&mut state) % (items as u64 - 1));
    }
    points.into_iter().collect()
}

struct Admin {
    base_url: String,
    runtime: tokio::runtime::Runtime,
}

impl Admin {
    fn get(&self, path: &str) -> Value {
        let url = format!("{}/_sandbox/{path}", self.base_url);
        self.runtime.block_on(async { reqwest::get(&url).await?.json().await }).expect("sandbox admin route")
    }

    fn patches(&self) -> u64 {
        self.get("stats")["configuration_patches"].as_u64().unwrap_or(0)
    }
}

fn offramp(bin: &Path, sandbox: &SandboxProcess, audit_db: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin.join("offramp"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(connectwise_env(&sandbox.ready))
        // No vendor limit in this sandbox: the run goes as fast as the CLI can.
        .env("CONNECTWISE_RATE_LIMIT", "1000")
        .env("OFFRAMP_AUDIT_DB", audit_db)
        .env("OFFRAMP_INITIATED_BY", "chaos@msp.example")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Run until the sandbox has applied `point` configuration writes, then SIGKILL; `None`:
/// run to the end. Whether the process completed (exit 0) or was killed by us.
fn run_until(mut child: Child, admin: &Admin, point: Option<u64>) -> (bool, bool) {
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.success(), false);
        }
        if point.is_some_and(|p| admin.patches() >= p) {
            // SAFETY: our own child, still running (not yet reaped).
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            let status = child.wait().expect("wait");
            // It may have finished between the check and the signal.
            return (status.success(), status.code().is_none());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The operation the first run recorded (the newest in the trail).
fn operation_id(bin: &Path, sandbox: &SandboxProcess, audit_db: &Path) -> String {
    let out = offramp(bin, sandbox, audit_db, &["audit", "list", "--json"]).output().expect("audit list");
    assert!(out.status.success(), "offramp audit list exited {}", out.status);
    let list: Value = serde_json::from_slice(&out.stdout).expect("audit list JSON");
    list[0]["operation"]["operation_id"].as_str().expect("an operation was recorded").to_string()
}

/// The trail's latest outcome per configuration id.
fn trail(bin: &Path, sandbox: &SandboxProcess, audit_db: &Path, operation: &str) -> HashMap<String, String> {
    let out = offramp(bin, sandbox, audit_db, &["audit", "show", operation, "--json"]).output().expect("audit show");
    let detail: Value = serde_json::from_slice(&out.stdout).expect("audit show JSON");
    let mut latest = HashMap::new();
    for change in detail["changes"].as_array().into_iter().flatten() {
        if change["item_type"].as_str() == Some("configuration") {
            let id = change["item_id"].as_str().unwrap_or_default().to_string();
            latest.insert(id, change["outcome"].as_str().unwrap_or_default().to_string());
        }
    }
    latest
}

pub fn crash_run(bin: &Path, items: usize, kills: usize, seed: u64) -> CrashRun {
    let sandbox = start_sandbox(bin, items);
    let admin = Admin {
        base_url: sandbox.ready["base_url"].as_str().unwrap_or_default().to_string(),
        runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let audit_db = dir.path().join("audit.sqlite");
    let points = kill_points(items, kills, seed);
    let start = Instant::now();
    let first = ["configs", "deactivate", "--client-id", "500", "--yes", "--json", "--override-blast-radius"];
    let child = offramp(bin, &sandbox, &audit_db, &first).stdout(Stdio::null()).spawn().expect("spawn offramp");
    let (mut completed, mut killed) = run_until(child, &admin, points.first().copied());
    assert!(killed || completed, "the first run failed before any kill");
    let operation = operation_id(bin, &sandbox, &audit_db);
    let (mut resumes, mut resumes_completed, mut kills_done) = (0, 0, usize::from(killed));
    let mut next = 1;
    while !completed {
        let resume = ["configs", "deactivate", "--resume", &operation, "--yes", "--json", "--break-lease"];
        let child = offramp(bin, &sandbox, &audit_db, &resume).stdout(Stdio::null()).spawn().expect("spawn offramp");
        (completed, killed) = run_until(child, &admin, points.get(next).copied());
        resumes += 1;
        next += 1;
        kills_done += usize::from(killed);
        resumes_completed += usize::from(completed || killed);
        if !completed && !killed {
            eprintln!("crashes: resume {resumes} of {operation} ended without completing");
            break;
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let configs = admin.get("configurations/connectwise/500");
    let latest = trail(bin, &sandbox, &audit_db, &operation);
    let mut run = CrashRun {
        items,
        kills: kills_done,
        resumes,
        resumes_completed,
        wall_s,
        lost: 0,
        written_twice: 0,
        trail_mismatches: 0,
        uncertain: 0,
    };
    for config in configs.as_array().into_iter().flatten() {
        let id = config["id"].as_i64().unwrap_or_default().to_string();
        let inactive = config["active"].as_bool() == Some(false);
        let outcome = latest.get(&id).map(String::as_str).unwrap_or("none");
        run.lost += usize::from(!inactive);
        run.written_twice += usize::from(config["updates"].as_u64().unwrap_or(0) > 1);
        run.uncertain += usize::from(outcome == "uncertain");
        let trail_says_done = outcome == "changed" || outcome == "uncertain";
        run.trail_mismatches += usize::from(trail_says_done != inactive);
    }
    let applied = admin.get("chaos");
    let twice_applied = applied["writes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, n)| !key.ends_with("#new") && n.as_u64().unwrap_or(0) > 1)
        .count();
    run.written_twice = run.written_twice.max(twice_applied);
    run
}

pub fn report(run: &CrashRun, seed: u64) {
    println!(
        "crashes (seed {seed}): {} configurations, {} SIGKILLs, {} resumes ({} completed or killed at their point), \
         {:.1} s; lost {}, written twice {}, trail/sandbox mismatches {}, uncertain (in flight at a kill, found \
         done) {} → {}",
        run.items,
        run.kills,
        run.resumes,
        run.resumes_completed,
        run.wall_s,
        run.lost,
        run.written_twice,
        run.trail_mismatches,
        run.uncertain,
        if run.ok() { "MET" } else { "MISSED" }
    );
}
