//! `make bench`: configuration deactivation on the three PSA sandboxes, side by side, two
//! client sizes per PSA, each at the vendor's limit, 50 ms latency per request.
//!
//! | PSA | configurations | vendor's limit (the sandbox enforces it) | least requests the fixture needs |
//! |---|---|---|---|
//! | ConnectWise | 500, 1,000 | 8 requests/s (a stand-in: no published quota) | company + status table + ⌈n/1000⌉ pages + n updates |
//! | Autotask | 500, 1,000 | 3 requests in flight per endpoint | zone + company + ⌈n/500⌉ pages + n updates |
//! | HaloPSA | 16,000, 20,000 | 300 requests per rolling 5 minutes | token + client + ⌈n/500⌉ pages + ⌈n/50⌉ batch updates |
//!
//! The bound is the least wall time the vendor's limit allows for the least number of
//! requests the fixture needs (not the client's own count): ConnectWise requests / 8 s;
//! Autotask requests × latency / 3; HaloPSA ⌊(requests − 1) / 300⌋ × 300 s plus one
//! latency, right for any batch size (HaloPSA's batch of 50 is the client's setting
//! `HALO_UPDATE_BATCH`; the least count uses it). HaloPSA gets more configurations because
//! batching makes 1,000 cost about 25 requests, far from its limit.
//!
//! Each run gets a fresh sandbox process and the release `offramp` binary; all run at the
//! same time (they mostly wait). Reported: wall time, requests (counted by the sandbox),
//! requests per configuration, the bound, their ratio, 429s served, and the CLI process's
//! peak memory (wait4's rusage). MET on a run: ratio ≤ 1.15, no 429 served, peak memory
//! < 64 MiB, every configuration deactivated; a ratio below 0.98 means the bound is wrong
//! (a run cannot beat the vendor's limit) and is reported as a broken bound, not a success.
//! Exit status 1 if any run misses. `OFFRAMP_BENCH_PSA=halo` (comma-separated names)
//! measures only those PSAs. On every PSA the larger run is then rolled back
//! (`offramp rollback`), and its figures are printed beside the forward run's, against the
//! bound of the least requests a rollback needs (one listing, then the restores in the
//! PSA's batches)
//! (docs/reliability.md).
//!
//! `continuation`: ConnectWise runs across invocations capped at 30 s of work, looped on
//! their report's `continuation`: 100,000 configurations through the state machine on moto
//! (continuation.rs; `offramp-bench continuation [CONFIGS] [SECONDS] [RATE] [machine|entry]`;
//! `entry` loops the Lambda entry in this process instead, with the trail in SQLite).
//!
//! `headline`: a full offboarding of a 100-seat client through the in-process chain
//! (headline.rs; `offramp-bench headline [LEAVERS] [CONTACTS] [CONFIGS]`).
//!
//! Then three processes share one ConnectWise limit (`shared_limits`: three workers, one
//! SQLite file, one sandbox at 8 requests/s), reported on a line of their own.
//!
//! ConnectWise publishes no quota (docs/vendors/connectwise.md#rate-limits): the sandbox's
//! 8 requests/s (429 with `Retry-After: 1` beyond) is a stand-in, below the client's
//! default pace of 10. The two measured runs are configured as the README tells an
//! operator who knows the instance's limit (`CONNECTWISE_RATE_LIMIT=8`); a third run keeps
//! the default pace and must adapt to the vendor's 429s: it is reported on its own line
//! ("adapting"): ADAPTED when every configuration is done, within the same ratio, with at
//! most [`ADAPTING_MAX_429`] refusals.

mod ad_offboarding;
mod audit_writes;
mod continuation;
mod headline;
mod shared_limits;
mod user_offboarding;
mod webhook_storm;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use offramp_tests::sandbox_process::SandboxProcess;

const LATENCY_MS: u64 = 50;
const TARGET_RATIO: f64 = 1.15;
/// Below this the bound, not the run, is wrong: nothing beats the vendor's limit.
const BROKEN_BOUND_RATIO: f64 = 0.98;
/// HaloPSA assets per update request (the client's `HALO_UPDATE_BATCH` default).
const HALO_BATCH: u64 = 50;
const TARGET_PEAK_MIB: f64 = 64.0;
/// The sandbox's ConnectWise limit, requests per second (a stand-in: docs/vendors/connectwise.md).
const CW_VENDOR_RATE: u64 = 8;
/// 429s the ConnectWise run at the client's default pace may meet while it adapts.
const ADAPTING_MAX_429: u64 = 3;
/// ConnectWise configurations of the adapting run.
const ADAPTING_CONFIGS: usize = 1_000;

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

    /// Two client sizes per PSA; the larger is rolled back afterwards.
    fn sizes(self) -> [usize; 2] {
        match self {
            Psa::ConnectWise | Psa::Autotask => [500, 1_000],
            Psa::Halo => [16_000, 20_000],
        }
    }

    /// The least number of requests deactivating `n` configurations needs on this PSA.
    fn least_requests(self, n: usize) -> u64 {
        let n = n as u64;
        match self {
            Psa::ConnectWise => 2 + n.div_ceil(1000) + n,
            Psa::Autotask => 2 + n.div_ceil(500) + n,
            Psa::Halo => 2 + n.div_ceil(500) + n.div_ceil(HALO_BATCH),
        }
    }

    fn limit(self) -> &'static str {
        match self {
            Psa::ConnectWise => "8 req/s",
            Psa::Autotask => "3 per endpoint",
            Psa::Halo => "300 per 5 min",
        }
    }

    /// The least wall time the PSA's limits allow for `requests` requests.
    fn bound_s(self, requests: u64) -> f64 {
        let latency = LATENCY_MS as f64 / 1000.0;
        match self {
            Psa::ConnectWise => requests as f64 / CW_VENDOR_RATE as f64,
            Psa::Autotask => requests as f64 * latency / 3.0,
            Psa::Halo => ((requests.saturating_sub(1) / 300) * 300) as f64 + latency,
        }
    }

    /// Sandbox flags: the vendor's limit as the sandbox enforces it.
    fn sandbox_args(self) -> Vec<String> {
        match self {
            // 429 with `Retry-After: 1` past 8 per second.
            Psa::ConnectWise => vec!["--rate-limit".into(), CW_VENDOR_RATE.to_string()],
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
                    // What "offboarded" means on ConnectWise is configured (no default).
                    ("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".into()),
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

fn release_dir() -> PathBuf {
    std::env::current_exe().expect("current exe").parent().expect("target dir").to_path_buf()
}

fn start_sandbox(bin: &Path, psa: Psa, configs: usize) -> SandboxProcess {
    let mut extra = vec!["--latency-ms".to_string(), LATENCY_MS.to_string()];
    extra.extend(psa.sandbox_args());
    SandboxProcess::start(bin, configs, &extra)
}

/// Run a command and return (exit code, peak resident set size in KiB).
fn run_measured(command: &mut Command) -> (i32, u64) {
    reap(command.spawn().expect("spawn offramp"))
}

/// Run a command whose standard output the caller piped; return it and the peak resident
/// set size in KiB.
fn run_measured_output(command: &mut Command) -> (String, u64) {
    use std::io::Read;
    let mut child = command.spawn().expect("spawn");
    let mut output = String::new();
    child.stdout.take().expect("piped stdout").read_to_string(&mut output).expect("read the child's output");
    (output, reap(child).1)
}

/// Wait for `child`: its exit code and peak resident set size in KiB (wait4's rusage).
fn reap(child: std::process::Child) -> (i32, u64) {
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

/// One measured run: the PSA, the client size, whether it is rolled back afterwards, and
/// whether the client keeps its default pace instead of the vendor's (ConnectWise only).
#[derive(Clone, Copy)]
struct Run {
    psa: Psa,
    configs: usize,
    roll_back: bool,
    adapting: bool,
}

struct Measurement {
    psa: Psa,
    configs: usize,
    adapting: bool,
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
    /// The least number of requests rolling back `n` configurations of one company needs:
    /// one listing (the rollback's reading), then the restores: ConnectWise one PATCH each,
    /// Autotask a PATCH and its read-back each (plus the listing's count query), HaloPSA
    /// one upsert per batch, after its token.
    fn least_rollback_requests(self, n: u64) -> u64 {
        match self {
            Psa::ConnectWise => n.div_ceil(1000) + n,
            Psa::Autotask => 1 + n.div_ceil(500) + 2 * n,
            Psa::Halo => 1 + n.div_ceil(500) + n.div_ceil(HALO_BATCH),
        }
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
        // The operator who knows the instance's limit sets it (README, ConnectWise settings).
        .env("CONNECTWISE_RATE_LIMIT", CW_VENDOR_RATE.to_string())
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

fn measure(bin: &Path, run: Run) -> Measurement {
    let Run { psa, configs, roll_back, adapting } = run;
    let sandbox = start_sandbox(bin, psa, configs);
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("report.json");
    let report_file = std::fs::File::create(&report_path).expect("report file");
    let mut command = offramp(bin, psa, &sandbox, dir.path(), report_file);
    if adapting {
        // The client's default pace (10 per second), above the vendor's.
        command.env_remove("CONNECTWISE_RATE_LIMIT");
    }
    command.args(["configs", "deactivate", "--client-id", "500", "--yes", "--json", "--override-blast-radius"]);
    let start = Instant::now();
    let (code, peak_kib) = run_measured(&mut command);
    let wall_s = start.elapsed().as_secs_f64();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_default()).unwrap_or_default();
    assert_eq!(code, 0, "{}: offramp exited {code}: {report}", psa.name());
    let stats = sandbox_stats(&sandbox);
    let operation_id = report["operation_id"].as_str().unwrap_or_default();
    let rollback = roll_back.then(|| measure_rollback(bin, psa, &sandbox, dir.path(), operation_id));
    Measurement {
        psa,
        configs,
        adapting,
        wall_s,
        requests: stats["total_requests"].as_u64().unwrap_or(0),
        throttled: stats["throttled"].as_u64().unwrap_or(0),
        peak_mib: peak_kib as f64 / 1024.0,
        deactivated: report["statistics"]["configs_deactivated"].as_u64().unwrap_or(0),
        rollback,
    }
}

fn main() {
    if shared_limits::is_worker() {
        shared_limits::worker();
        return;
    }
    let bin = release_dir();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("users") {
        // `offramp-bench users batch|single`: one user-offboarding run (user_offboarding.rs).
        user_offboarding::child(args.get(1).map(String::as_str) != Some("single"));
        return;
    }
    if args.first().map(String::as_str) == Some("ad") {
        // `offramp-bench ad`: 200 AD users on the Samba DC (ad_offboarding.rs).
        ad_offboarding::child();
        return;
    }
    if args.first().map(String::as_str) == Some("crashes") {
        // `offramp-bench crashes [ITEMS] [KILLS] [SEED]` (make chaos): tests/support/crashes.rs.
        let number = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
        let (items, kills, seed) = (number(1, 2_000) as usize, number(2, 20) as usize, number(3, 13));
        let run = offramp_tests::crashes::crash_run(&bin, items, kills, seed);
        offramp_tests::crashes::report(&run, seed);
        std::process::exit(if run.ok() { 0 } else { 1 });
    }
    if args.first().map(String::as_str) == Some("webhook-storm") {
        // `offramp-bench webhook-storm`: the webhook function under 1,000 deliveries (webhook_storm.rs).
        std::process::exit(if webhook_storm::report() { 0 } else { 1 });
    }
    let size = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let headline_size = || (size(1, headline::LEAVERS), size(2, headline::CONTACTS), size(3, headline::CONFIGS));
    if args.first().map(String::as_str) == Some("headline-run") {
        // The headline's child process (headline.rs).
        let (leavers, contacts, configs) = headline_size();
        headline::child(leavers, contacts, configs);
        return;
    }
    if args.first().map(String::as_str) == Some("headline") {
        // `offramp-bench headline [LEAVERS] [CONTACTS] [CONFIGS]`: a full client offboarding (headline.rs).
        let (leavers, contacts, configs) = headline_size();
        std::process::exit(if headline::report(&bin, leavers, contacts, configs) { 0 } else { 1 });
    }
    if args.first().map(String::as_str) == Some("continuation") {
        // `offramp-bench continuation [CONFIGS] [WORK_SECONDS] [RATE]` (continuation.rs).
        let number = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
        let configs = number(1, continuation::CONFIGS as u64) as usize;
        let rate = number(3, u64::from(continuation::RATE)) as u32;
        let through = continuation::Through::parse(args.get(4).map(String::as_str));
        let ok = continuation::report(configs, number(2, continuation::WORK_SECONDS), rate, through);
        std::process::exit(if ok { 0 } else { 1 });
    }
    println!("configuration deactivation, {LATENCY_MS} ms latency, each PSA at its limit, two sizes (side by side)…");
    // OFFRAMP_BENCH_PSA=halo (comma-separated) measures only those.
    let only = std::env::var("OFFRAMP_BENCH_PSA").unwrap_or_default();
    let chosen: Vec<Psa> = [Psa::ConnectWise, Psa::Autotask, Psa::Halo]
        .into_iter()
        .filter(|psa| only.is_empty() || only.split(',').any(|p| p.trim() == psa.name()))
        .collect();
    let runs: Vec<Measurement> = std::thread::scope(|scope| {
        let handles: Vec<_> = planned_runs(&chosen)
            .into_iter()
            .map(|run| {
                let bin = bin.clone();
                scope.spawn(move || measure(&bin, run))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("measurement")).collect()
    });
    let mut ok = report_runs(&runs);
    report_rollbacks(&runs);
    // `shared` in OFFRAMP_BENCH_PSA (or no filter): three processes, one vendor limit.
    if only.is_empty() || only.split(',').any(|p| p.trim() == "shared") {
        ok &= shared_limits::report(&bin);
    }
    if only.is_empty() || only.split(',').any(|p| p.trim() == "users") {
        ok &= user_offboarding::report(&bin);
    }
    if only.is_empty() || only.split(',').any(|p| p.trim() == "ad") {
        ok &= ad_offboarding::report(&bin);
    }
    if only.is_empty() || only.split(',').any(|p| p.trim() == "webhook") {
        ok &= webhook_storm::report();
    }
    // `continuation` in OFFRAMP_BENCH_PSA (or no filter): one run across capped invocations.
    if only.is_empty() || only.split(',').any(|p| p.trim() == "continuation") {
        use continuation::{CONFIGS, RATE, Through, WORK_SECONDS};
        ok &= continuation::report(CONFIGS, WORK_SECONDS, RATE, Through::StateMachine);
    }
    ok &= report_audit_writes();
    // `headline` in OFFRAMP_BENCH_PSA (or no filter): a full offboarding of a 100-seat client.
    if only.is_empty() || only.split(',').any(|p| p.trim() == "headline") {
        ok &= headline::report(&bin, headline::LEAVERS, headline::CONTACTS, headline::CONFIGS);
    }
    if !ok {
        std::process::exit(1);
    }
}

/// Two sizes per chosen PSA (the larger rolled back), and ConnectWise once more at the
/// client's default pace.
fn planned_runs(chosen: &[Psa]) -> Vec<Run> {
    let mut runs: Vec<Run> = chosen
        .iter()
        .flat_map(|psa| {
            psa.sizes().into_iter().enumerate().map(move |(i, configs)| Run {
                psa: *psa,
                configs,
                roll_back: i == 1,
                adapting: false,
            })
        })
        .collect();
    if chosen.iter().any(|psa| matches!(psa, Psa::ConnectWise)) {
        runs.push(Run { psa: Psa::ConnectWise, configs: ADAPTING_CONFIGS, roll_back: false, adapting: true });
    }
    runs
}

/// A forward run's verdict against its bound (`ratio`).
fn verdict(m: &Measurement, ratio: f64) -> &'static str {
    let done = m.deactivated == m.configs as u64 && m.peak_mib < TARGET_PEAK_MIB;
    if ratio < BROKEN_BOUND_RATIO {
        "BROKEN BOUND"
    } else if m.adapting {
        if done && ratio <= TARGET_RATIO && m.throttled <= ADAPTING_MAX_429 { "ADAPTED" } else { "MISSED" }
    } else if done && ratio <= TARGET_RATIO && m.throttled == 0 {
        "MET"
    } else {
        "MISSED"
    }
}

/// The forward runs against their bounds; whether every one met its target.
fn report_runs(runs: &[Measurement]) -> bool {
    println!();
    println!(
        "{:<12} {:>7} {:>15} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>8} {:>4} {:>6}  verdict",
        "psa",
        "configs",
        "limit",
        "wall (s)",
        "requests",
        "least",
        "req/cfg",
        "bound(s)",
        "ratio",
        "peak MiB",
        "429",
        "done"
    );
    let mut ok = true;
    for m in runs {
        let least = m.psa.least_requests(m.configs);
        let bound = m.psa.bound_s(least);
        let ratio = m.wall_s / bound;
        let verdict = verdict(m, ratio);
        println!(
            "{:<12} {:>7} {:>15} {:>8.2} {:>8} {:>8} {:>7.3} {:>8.2} {:>7.3} {:>8.1} {:>4} {:>6}  {verdict}",
            if m.adapting { "cw-adapting" } else { m.psa.name() },
            m.configs,
            m.psa.limit(),
            m.wall_s,
            m.requests,
            least,
            m.requests as f64 / m.configs as f64,
            bound,
            ratio,
            m.peak_mib,
            m.throttled,
            m.deactivated
        );
        ok &= matches!(verdict, "MET" | "ADAPTED");
    }
    println!();
    println!(
        "target on every run: {BROKEN_BOUND_RATIO} <= ratio <= {TARGET_RATIO}, no 429 (the adapting run: at most \
         {ADAPTING_MAX_429}), peak < {TARGET_PEAK_MIB} MiB, every configuration deactivated: {}",
        if ok { "MET" } else { "MISSED" }
    );
    ok
}

/// Rollback beside the forward run: the same configurations put back, through the same
/// limits. Reported, not a target of its own.
fn report_rollbacks(runs: &[Measurement]) {
    println!();
    println!(
        "{:<12} {:>8} {:>13} {:>13} {:>9} {:>8} {:>9} {:>7}",
        "rollback", "restored", "forward (s)", "rollback (s)", "requests", "least", "bound (s)", "ratio"
    );
    for m in runs {
        let Some(r) = &m.rollback else { continue };
        let least = m.psa.least_rollback_requests(r.restored);
        let bound = m.psa.bound_s(least);
        println!(
            "{:<12} {:>8} {:>13.2} {:>13.2} {:>9} {:>8} {:>9.2} {:>7.3}",
            m.psa.name(),
            r.restored,
            m.wall_s,
            r.wall_s,
            r.requests,
            least,
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
