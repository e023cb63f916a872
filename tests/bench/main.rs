//! `make bench`: configuration deactivation on the three PSA sandboxes, side by side,
//! each at its own default limits (client and sandbox alike), 50 ms latency per request.
//!
//! | PSA | configurations | default limit | rate-limit bound |
//! |---|---|---|---|
//! | ConnectWise | 1,000 | 10 requests/s | requests / 10 s |
//! | Autotask | 1,000 | 3 requests in flight per endpoint (and 10,000/h, not reached) | requests × latency / 3 |
//! | HaloPSA | 16,000 | 300 requests per rolling 5 minutes (updates batched 50 per request) | ⌊(requests − 1) / 300⌋ × 300 s |
//!
//! HaloPSA gets more configurations because batching makes 1,000 of them cost about 25
//! requests, far from its limit; 16,000 need more than 300 requests, so the five-minute
//! window is what bounds the run. Each PSA gets a fresh sandbox process and runs the
//! release `offramp` binary; the three run at the same time (they mostly wait). Reported:
//! wall time, requests (counted by the sandbox), the bound, their ratio, 429s served, and
//! the CLI process's peak memory (wait4's rusage). Targets: ratio ≤ 1.15 and peak memory
//! < 64 MiB on every PSA. Exit status 1 if a target is missed. `OFFRAMP_BENCH_PSA=halo`
//! (comma-separated names) measures only those PSAs. On ConnectWise and Autotask the run
//! is then rolled back (`offramp rollback`), and its wall time, requests and ratio to the
//! same bound are printed beside the forward run's (docs/reliability.md).

mod audit_writes;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::Value;

const LATENCY_MS: u64 = 50;
const TARGET_RATIO: f64 = 1.15;
const TARGET_PEAK_MIB: f64 = 64.0;

#[derive(Clone, Copy)]
enum Psa {
    ConnectWise,
    Autotask,
    Halo,
}

impl Psa {
    fn name(self) -> &'static str {
        match self {
            Psa::ConnectWise => "connectwise",
            Psa::Autotask => "autotask",
            Psa::Halo => "halo",
        }
    }

    fn configs(self) -> usize {
        match self {
            Psa::ConnectWise | Psa::Autotask => 1_000,
            Psa::Halo => 16_000,
        }
    }

    fn limit(self) -> &'static str {
        match self {
            Psa::ConnectWise => "10 req/s",
            Psa::Autotask => "3 per endpoint",
            Psa::Halo => "300 per 5 min",
        }
    }

    /// The least wall time the PSA's limits allow for `requests` requests.
    fn bound_s(self, requests: u64) -> f64 {
        let latency = LATENCY_MS as f64 / 1000.0;
        match self {
            Psa::ConnectWise => requests as f64 / 10.0,
            Psa::Autotask => requests as f64 * latency / 3.0,
            Psa::Halo => ((requests.saturating_sub(1) / 300) * 300) as f64,
        }
    }

    /// Sandbox flags: the vendor's limit as the sandbox enforces it.
    fn sandbox_args(self) -> Vec<String> {
        match self {
            // The sandbox answers 429 past 10/s, like a ConnectWise that enforces our limit.
            Psa::ConnectWise => vec!["--rate-limit".into(), "10".into()],
            // The thread limit and the 10,000/h threshold are always on in the sandbox.
            Psa::Autotask => vec![],
            Psa::Halo => vec!["--halo-rate-limit".into(), "300".into()],
        }
    }

    /// The environment of the `offramp` process: credentials and nothing else (defaults).
    fn env(self, ready: &Value) -> Vec<(String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let pairs: Vec<(&str, String)> = match self {
            Psa::ConnectWise => {
                let cw = &ready["connectwise"];
                vec![
                    ("CONNECTWISE_URL", text(&cw["url"])),
                    ("CONNECTWISE_COMPANY_ID", text(&cw["company_id"])),
                    ("CONNECTWISE_PUBLIC_KEY", text(&cw["public_key"])),
                    ("CONNECTWISE_PRIVATE_KEY", text(&cw["private_key"])),
                    ("CONNECTWISE_CLIENT_ID", text(&cw["client_id"])),
                ]
            }
            Psa::Autotask => {
                let at = &ready["autotask"];
                vec![
                    ("AUTOTASK_ZONE_LOOKUP_URL", text(&at["zone_lookup_url"])),
                    ("AUTOTASK_USERNAME", text(&at["username"])),
                    ("AUTOTASK_SECRET", text(&at["secret"])),
                    ("AUTOTASK_INTEGRATION_CODE", text(&at["integration_code"])),
                ]
            }
            Psa::Halo => {
                let halo = &ready["halo"];
                vec![
                    ("HALO_URL", text(&halo["url"])),
                    ("HALO_TENANT", text(&halo["tenant"])),
                    ("HALO_CLIENT_ID", text(&halo["client_id"])),
                    ("HALO_CLIENT_SECRET", text(&halo["client_secret"])),
                ]
            }
        };
        let mut env: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        env.push(("OFFRAMP_PSA".into(), self.name().into()));
        env
    }
}

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

fn start_sandbox(bin: &Path, psa: Psa) -> SandboxProcess {
    let mut child = Command::new(bin.join("offramp-sandbox"))
        .args(["--port", "0", "--large-configs", "0", "--bench-configs", &psa.configs().to_string()])
        .args(["--latency-ms", &LATENCY_MS.to_string()])
        .args(psa.sandbox_args())
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
    psa: Psa,
    wall_s: f64,
    requests: u64,
    throttled: u64,
    peak_mib: f64,
    deactivated: u64,
    rollback: Option<RollbackRun>,
}

/// The rollback of the measured run: `offramp rollback` on the same trail and sandbox.
struct RollbackRun {
    wall_s: f64,
    requests: u64,
    restored: u64,
}

impl Psa {
    /// HaloPSA restores one asset per request: 16,000 would take hours at 300 per 5 minutes.
    fn rolls_back(self) -> bool {
        !matches!(self, Psa::Halo)
    }
}

fn sandbox_stats(sandbox: &SandboxProcess) -> Value {
    let base_url = sandbox.ready["base_url"].as_str().unwrap_or_default().to_string();
    let stats_url = format!("{base_url}/_sandbox/stats");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { reqwest::get(&stats_url).await?.json().await })
        .expect("sandbox stats")
}

/// `offramp` with the PSA's credentials and the bench's audit trail, JSON to `out`.
fn offramp(bin: &Path, psa: Psa, sandbox: &SandboxProcess, dir: &Path, out: std::fs::File) -> Command {
    let mut command = Command::new(bin.join("offramp"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(psa.env(&sandbox.ready))
        .env("OFFRAMP_AUDIT_DB", dir.join("audit.sqlite"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null());
    command
}

fn measure_rollback(bin: &Path, psa: Psa, sandbox: &SandboxProcess, dir: &Path, operation_id: &str) -> RollbackRun {
    let before = sandbox_stats(sandbox)["total_requests"].as_u64().unwrap_or(0);
    let path = dir.join("rollback.json");
    let mut command = offramp(bin, psa, sandbox, dir, std::fs::File::create(&path).expect("rollback report"));
    command.args(["rollback", operation_id, "--yes", "--json"]);
    let start = Instant::now();
    let (code, _) = run_measured(&mut command);
    let wall_s = start.elapsed().as_secs_f64();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default()).unwrap_or_default();
    assert_eq!(code, 0, "{}: offramp rollback exited {code}: {report}", psa.name());
    let requests = sandbox_stats(sandbox)["total_requests"].as_u64().unwrap_or(0) - before;
    RollbackRun { wall_s, requests, restored: report["statistics"]["restored"].as_u64().unwrap_or(0) }
}

fn measure(bin: &Path, psa: Psa) -> Measurement {
    let sandbox = start_sandbox(bin, psa);
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let report_file = std::fs::File::create(&report_path).expect("report file");
    let mut command = offramp(bin, psa, &sandbox, dir.path(), report_file);
    command.args(["configs", "deactivate", "--client-id", "500", "--yes", "--json", "--override-blast-radius"]);
    let start = Instant::now();
    let (code, peak_kib) = run_measured(&mut command);
    let wall_s = start.elapsed().as_secs_f64();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_default()).unwrap_or_default();
    assert_eq!(code, 0, "{}: offramp exited {code}: {report}", psa.name());
    let stats = sandbox_stats(&sandbox);
    let operation_id = report["operation_id"].as_str().unwrap_or_default();
    let rollback = psa.rolls_back().then(|| measure_rollback(bin, psa, &sandbox, dir.path(), operation_id));
    Measurement {
        psa,
        wall_s,
        requests: stats["total_requests"].as_u64().unwrap_or(0),
        throttled: stats["throttled"].as_u64().unwrap_or(0),
        peak_mib: peak_kib as f64 / 1024.0,
        deactivated: report["statistics"]["configs_deactivated"].as_u64().unwrap_or(0),
        rollback,
    }
}

fn main() {
    let bin = release_dir();
    println!(
        "configuration deactivation, {LATENCY_MS} ms latency, each PSA at its default limits (running side by side)…"
    );
    let runs: Vec<Measurement> = std::thread::scope(|scope| {
        // OFFRAMP_BENCH_PSA=halo (comma-separated) measures only those.
        let only = std::env::var("OFFRAMP_BENCH_PSA").unwrap_or_default();
        let handles: Vec<_> = [Psa::ConnectWise, Psa::Autotask, Psa::Halo]
            .into_iter()
            .filter(|psa| only.is_empty() || only.split(',').any(|p| p.trim() == psa.name()))
            .map(|psa| {
                let bin = bin.clone();
                scope.spawn(move || measure(&bin, psa))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("measurement")).collect()
    });
    println!();
    println!(
        "{:<12} {:>8} {:>15} {:>9} {:>9} {:>9} {:>7} {:>9} {:>5} {:>11}",
        "psa", "configs", "limit", "wall (s)", "requests", "bound (s)", "ratio", "peak MiB", "429", "deactivated"
    );
    let mut ok = true;
    for m in &runs {
        let bound = m.psa.bound_s(m.requests);
        let ratio = m.wall_s / bound;
        println!(
            "{:<12} {:>8} {:>15} {:>9.2} {:>9} {:>9.2} {:>7.3} {:>9.1} {:>5} {:>11}",
            m.psa.name(),
            m.psa.configs(),
            m.psa.limit(),
            m.wall_s,
            m.requests,
            bound,
            ratio,
            m.peak_mib,
            m.throttled,
            m.deactivated
        );
        ok &= ratio <= TARGET_RATIO && m.peak_mib < TARGET_PEAK_MIB && m.deactivated == m.psa.configs() as u64;
    }
    println!();
    println!(
        "target on every PSA: ratio <= {TARGET_RATIO}, peak < {TARGET_PEAK_MIB} MiB, every configuration deactivated: {}",
        if ok { "MET" } else { "MISSED" }
    );
    report_rollbacks(&runs);
    ok &= report_audit_writes();
    if !ok {
        std::process::exit(1);
    }
}

/// Rollback beside the forward run: the same configurations put back, through the same
/// limits. Reported, not a target of its own.
fn report_rollbacks(runs: &[Measurement]) {
    println!();
    println!(
        "{:<12} {:>8} {:>13} {:>13} {:>9} {:>9} {:>7}",
        "rollback", "restored", "forward (s)", "rollback (s)", "requests", "bound (s)", "ratio"
    );
    for m in runs {
        let Some(r) = &m.rollback else {
            println!("{:<12} not measured: HaloPSA restores one asset per request (hours at its limit)", m.psa.name());
            continue;
        };
        let bound = m.psa.bound_s(r.requests);
        println!(
            "{:<12} {:>8} {:>13.2} {:>13.2} {:>9} {:>9.2} {:>7.3}",
            m.psa.name(),
            r.restored,
            m.wall_s,
            r.wall_s,
            r.requests,
            bound,
            r.wall_s / bound
        );
    }
}

/// The audit trail's write cost on DynamoDB (moto); skipped, and said so, without moto.
fn report_audit_writes() -> bool {
    println!();
    let Some(writes) = audit_writes::measure() else {
        println!("audit writes: skipped (no moto server; `make bench` starts one)");
        return true;
    };
    println!(
        "audit writes, {} configurations on DynamoDB (moto): {} audit items in {} write requests = {:.1} items per \
         request (target >= 25, every configuration deactivated: {}): {}",
        audit_writes::CONFIGS,
        writes.items,
        writes.requests,
        writes.items_per_request(),
        writes.deactivated,
        if writes.met() { "MET" } else { "MISSED" }
    );
    writes.met()
}
