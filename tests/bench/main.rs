//! `make bench`: configuration deactivation against the ConnectWise sandbox.
//!
//! Each run gets a fresh sandbox process (2,000 configurations, 50 ms latency per
//! request, 100 requests/second) and runs the release `offramp` binary with the
//! client-side rate limit set to the same 100/s. It reports wall time, requests made
//! (counted by the sandbox), the rate-limit bound (requests / limit), their ratio, and
//! the CLI process's peak memory (from wait4's rusage). Targets: ratio ≤ 1.15 and peak
//! memory < 64 MiB for the default concurrency. Exit status 1 if a target is missed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::Value;

const CONFIGS: usize = 2_000;
const LATENCY_MS: u64 = 50;
const RATE_LIMIT: u32 = 100;
const TARGET_RATIO: f64 = 1.15;
const TARGET_PEAK_MIB: f64 = 64.0;

struct SandboxProcess {
    child: Child,
    ready: Value,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn release_dir() -> PathBuf {
    std::env::current_exe().expect("current exe").parent().expect("target dir").to_path_buf()
}

fn start_sandbox(bin: &Path) -> SandboxProcess {
    let mut child = Command::new(bin.join("offramp-sandbox"))
        .args(["--port", "0", "--large-configs", "0", "--bench-configs", &CONFIGS.to_string()])
        .args(["--latency-ms", &LATENCY_MS.to_string(), "--rate-limit", &RATE_LIMIT.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start offramp-sandbox (make bench builds it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    let ready: Value = serde_json::from_str(&line).expect("sandbox ready line is JSON");
    SandboxProcess { child, ready }
}

/// Run a command and return (exit code, peak resident set size in KiB).
fn run_measured(command: &mut Command) -> (i32, u64) {
    let child = command.spawn().expect("spawn offramp");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; status and usage point to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    std::mem::forget(child); // already reaped
    (code, usage.ru_maxrss as u64)
}

struct Measurement {
    concurrency: usize,
    wall_s: f64,
    requests: u64,
    throttled: u64,
    peak_mib: f64,
    deactivated: u64,
}

fn measure(bin: &Path, concurrency: usize) -> Measurement {
    let sandbox = start_sandbox(bin);
    let cw = &sandbox.ready["connectwise"];
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let report_file = std::fs::File::create(&report_path).expect("report file");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut command = Command::new(bin.join("offramp"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OFFRAMP_PSA", "connectwise")
        .env("CONNECTWISE_URL", text(&cw["url"]))
        .env("CONNECTWISE_COMPANY_ID", text(&cw["company_id"]))
        .env("CONNECTWISE_PUBLIC_KEY", text(&cw["public_key"]))
        .env("CONNECTWISE_PRIVATE_KEY", text(&cw["private_key"]))
        .env("CONNECTWISE_CLIENT_ID", text(&cw["client_id"]))
        .env("CONNECTWISE_RATE_LIMIT", RATE_LIMIT.to_string())
        .env("CONNECTWISE_MAX_CONCURRENCY", concurrency.to_string())
        .env("OFFRAMP_CONCURRENCY", concurrency.to_string())
        .env("OFFRAMP_AUDIT_DB", dir.path().join("audit.sqlite"))
        .args(["configs", "deactivate", "--client-id", "500", "--yes", "--json"])
        .stdin(Stdio::null())
        .stdout(report_file)
        .stderr(Stdio::null());
    let start = Instant::now();
    let (code, peak_kib) = run_measured(&mut command);
    let wall_s = start.elapsed().as_secs_f64();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_default()).unwrap_or_default();
    assert_eq!(code, 0, "offramp exited {code}: {report}");

    let stats_url = format!("{}/_sandbox/stats", text(&sandbox.ready["base_url"]));
    let stats: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { reqwest::get(&stats_url).await?.json().await })
        .expect("sandbox stats");
    Measurement {
        concurrency,
        wall_s,
        requests: stats["total_requests"].as_u64().unwrap_or(0),
        throttled: stats["throttled"].as_u64().unwrap_or(0),
        peak_mib: peak_kib as f64 / 1024.0,
        deactivated: report["statistics"]["configs_deactivated"].as_u64().unwrap_or(0),
    }
}

fn main() {
    let bin = release_dir();
    // The documented defaults: OFFRAMP_CONCURRENCY and CONNECTWISE_MAX_CONCURRENCY are both 8.
    let default_concurrency = 8;
    println!(
        "configuration deactivation: {CONFIGS} configurations, {LATENCY_MS} ms latency, {RATE_LIMIT} requests/s (sandbox and client)"
    );
    let runs = [measure(&bin, default_concurrency), measure(&bin, 1)];
    println!();
    println!(
        "{:>11}  {:>9}  {:>8}  {:>9}  {:>6}  {:>9}  {:>11}  {:>11}",
        "concurrency", "wall (s)", "requests", "bound (s)", "ratio", "peak MiB", "429 served", "deactivated"
    );
    let mut ok = true;
    for (i, m) in runs.iter().enumerate() {
        let bound = m.requests as f64 / RATE_LIMIT as f64;
        let ratio = m.wall_s / bound;
        println!(
            "{:>11}  {:>9.2}  {:>8}  {:>9.2}  {:>6.3}  {:>9.1}  {:>11}  {:>11}",
            m.concurrency, m.wall_s, m.requests, bound, ratio, m.peak_mib, m.throttled, m.deactivated
        );
        if i == 0 {
            ok &= ratio <= TARGET_RATIO && m.peak_mib < TARGET_PEAK_MIB && m.deactivated == CONFIGS as u64;
        }
    }
    println!();
    println!(
        "target (concurrency {default_concurrency}): ratio <= {TARGET_RATIO}, peak < {TARGET_PEAK_MIB} MiB, all {CONFIGS} deactivated: {}",
        if ok { "MET" } else { "MISSED" }
    );
    if !ok {
        std::process::exit(1);
    }
}
