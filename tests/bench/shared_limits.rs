//! Three processes, one vendor limit (issue 13, point 8): three separate OS processes (this
//! bench binary started again as a worker, `OFFRAMP_BENCH_WORKER=1`) build their adapters
//! the way the CLI and the Lambdas do (`offramp::app::build`) on one SQLite audit file, and
//! read companies from one sandbox ConnectWise at its 8 requests/s stand-in, all at once.
//! Each is configured at the vendor's full rate (`CONNECTWISE_RATE_LIMIT=8`), so only the
//! shared schedule keeps them together within it.
//!
//! Reported: wall time from the first start to the last exit, requests and 429s counted by
//! the sandbox, the bound (requests / 8 s) and the ratio. MET: 0 × 429, every worker
//! succeeded, 0.98 ≤ ratio ≤ 1.15 (docs/reliability.md#vendor-limits-shared-by-every-process).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use offramp::config::ConfigSource;
use offramp::ports::Psa;

/// Set in a worker's environment; its value is the number of requests to send.
pub const WORKER_VAR: &str = "OFFRAMP_BENCH_WORKER";
const PROCESSES: usize = 3;
const REQUESTS_EACH: usize = 160;
const IN_FLIGHT: usize = 8;

/// Whether this process was started as a worker.
pub fn is_worker() -> bool {
    std::env::var_os(WORKER_VAR).is_some()
}

/// The worker: `app::build` from the environment, then its requests, eight in flight.
pub fn worker() {
    let requests: usize = std::env::var(WORKER_VAR).ok().and_then(|n| n.parse().ok()).unwrap_or(REQUESTS_EACH);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let services = offramp::app::build(&ConfigSource::from_env()).await.expect("adapters");
        let psa: Arc<dyn Psa> = services.psa.clone();
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..IN_FLIGHT {
            let psa = psa.clone();
            tasks.spawn(async move {
                for i in (lane..requests).step_by(IN_FLIGHT) {
                    psa.company_by_id(if i % 2 == 0 { "250" } else { "260" }).await.expect("answered");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("worker lane");
        }
    });
}

pub struct SharedRun {
    pub wall_s: f64,
    pub requests: u64,
    pub throttled: u64,
    pub workers_ok: bool,
}

impl SharedRun {
    pub fn bound_s(&self) -> f64 {
        self.requests as f64 / super::CW_VENDOR_RATE as f64
    }

    pub fn ratio(&self) -> f64 {
        self.wall_s / self.bound_s()
    }

    pub fn met(&self) -> bool {
        let ratio = self.ratio();
        self.workers_ok && self.throttled == 0 && (super::BROKEN_BOUND_RATIO..=super::TARGET_RATIO).contains(&ratio)
    }
}

/// Three workers at once against one sandbox ConnectWise, one SQLite file between them.
pub fn measure(bin: &Path) -> SharedRun {
    let sandbox = super::start_sandbox(bin, super::Psa::ConnectWise, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let me = std::env::current_exe().expect("this bench");
    let start = Instant::now();
    let mut workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&me)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(super::Psa::ConnectWise.env(&sandbox.ready))
                .env("CONNECTWISE_RATE_LIMIT", super::CW_VENDOR_RATE.to_string())
                .env("OFFRAMP_AUDIT_DB", dir.path().join("audit.sqlite"))
                .env(WORKER_VAR, REQUESTS_EACH.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let workers_ok = workers.iter_mut().all(|worker| worker.wait().is_ok_and(|status| status.success()));
    let wall_s = start.elapsed().as_secs_f64();
    let stats = super::sandbox_stats(&sandbox);
    SharedRun {
        wall_s,
        requests: stats["total_requests"].as_u64().unwrap_or(0),
        throttled: stats["throttled"].as_u64().unwrap_or(0),
        workers_ok,
    }
}

/// Print the run's line; whether it met its target.
pub fn report(bin: &Path) -> bool {
    println!();
    println!(
        "shared limits: {PROCESSES} processes × {REQUESTS_EACH} requests, one sandbox ConnectWise at \
         {} req/s, one SQLite file…",
        super::CW_VENDOR_RATE
    );
    let run = measure(bin);
    println!(
        "{:<14} {:>9} {:>8} {:>8} {:>9} {:>7} {:>4}  verdict",
        "shared", "processes", "wall (s)", "requests", "bound (s)", "ratio", "429"
    );
    let verdict = if run.met() { "MET" } else { "MISSED" };
    println!(
        "{:<14} {:>9} {:>8.2} {:>8} {:>9.2} {:>7.3} {:>4}  {verdict}",
        "connectwise",
        PROCESSES,
        run.wall_s,
        run.requests,
        run.bound_s(),
        run.ratio(),
        run.throttled
    );
    println!(
        "target: {PROCESSES} processes together, 0 × 429, every worker succeeded, {} <= ratio <= {}: {verdict}",
        super::BROKEN_BOUND_RATIO,
        super::TARGET_RATIO
    );
    run.met()
}
