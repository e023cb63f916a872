//! A configuration deactivation that outlives one invocation: the `deactivate-configs`
//! Lambda entry (`FunctionServices::handle_until`, as `crate::lambda` calls it) in a loop,
//! each invocation capped at [`WORK_SECONDS`] of work by `OFFRAMP_INVOCATION_MAX_SECONDS`
//! under a 15-minute Lambda deadline, fed its report's `continuation.operation_id` until a
//! report has none (what the state machine's `Choice` does). The ConnectWise sandbox serves
//! 8 requests/s (the stand-in limit of `make bench`'s ConnectWise runs, 429 beyond), 50 ms
//! latency; the client paces at 8 (`CONNECTWISE_RATE_LIMIT`).
//!
//! Printed: invocations, wall time, the bound (the least requests one uninterrupted run
//! needs / 8 per second), the ratio, requests and 429s counted by the sandbox, and the
//! configurations PATCHed other than exactly once (target 0). Each resume lists the
//! client's configurations again (⌈n/1000⌉ requests) to see what others changed meanwhile:
//! that, and the company lookup, is the price of an invocation (docs/reliability.md).
//!
//! `offramp-bench continuation [CONFIGS] [WORK_SECONDS]`; `make bench` runs the defaults.
//! 100,000 configurations at 8 requests/s is 3.5 hours of the vendor's limit alone, so the
//! default is smaller; the figure scales (docs/reliability.md#runs-across-invocations).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use offramp::entry::{Function, FunctionServices};
use offramp_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

/// Configurations of the default run.
pub const CONFIGS: usize = 2_000;
/// Work per invocation.
pub const WORK_SECONDS: u64 = 30;
/// Requests per second the sandbox allows and the client paces at.
const RATE: u32 = 8;
const LATENCY: Duration = Duration::from_millis(50);
/// Most wall time over the bound the run may take.
const TARGET_RATIO: f64 = 1.15;

pub struct Measurement {
    pub configs: usize,
    pub invocations: usize,
    pub wall: Duration,
    pub requests: u64,
    pub throttled: u64,
    /// Configurations PATCHed other than exactly once.
    pub not_once: usize,
    pub inactive: usize,
}

impl Measurement {
    /// The least wall time ConnectWise's limit allows one uninterrupted run: the company,
    /// the status table, ⌈n/1000⌉ pages and n updates, 8 a second.
    pub fn bound_s(&self) -> f64 {
        let n = self.configs as u64;
        (2 + n.div_ceil(1000) + n) as f64 / f64::from(RATE)
    }

    pub fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.bound_s()
    }

    pub fn met(&self) -> bool {
        self.not_once == 0 && self.inactive == self.configs && self.ratio() <= TARGET_RATIO && self.invocations > 1
    }
}

pub fn measure(configs: usize, work_seconds: u64) -> Measurement {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(configs, work_seconds))
}

async fn run(configs: usize, work_seconds: u64) -> Measurement {
    let sandbox = Sandbox::start(SandboxConfig {
        large_client_configs: configs,
        rate_limit_per_sec: Some(RATE),
        latency: LATENCY,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = offramp_tests::connectwise::source(&sandbox, &dir.path().join("audit.sqlite"));
    source.set("CONNECTWISE_RATE_LIMIT", RATE.to_string());
    source.set("OFFRAMP_INVOCATION_MAX_SECONDS", work_seconds.to_string());
    let services = FunctionServices::build(Function::DeactivateConfigs, &source).await.expect("services");
    let mut event = json!({
        "client_id": 300, "allow_active_client": true, "override_blast_radius": true,
        "initiated_by": "bench", "reason": "continuation bench",
    });
    let started = Instant::now();
    let mut invocations = 0;
    loop {
        invocations += 1;
        // A 15-minute Lambda invocation, as the runtime's context says it.
        let lambda_deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 900_000;
        let deadline = services.invocation_limits().deadline(lambda_deadline_ms);
        let answer = services.handle_until(Function::DeactivateConfigs, event, "lambda:bench", deadline).await;
        let Some(continuation) = answer.get("continuation") else {
            assert_eq!(answer["success"], true, "the last invocation: {answer}");
            break;
        };
        event = json!({ "operation_id": continuation["operation_id"], "initiated_by": "bench" });
    }
    let wall = started.elapsed();
    let cw = sandbox.connectwise();
    let all = cw.configurations_of(300);
    let stats = sandbox.stats();
    Measurement {
        configs,
        invocations,
        wall,
        requests: stats.total(),
        throttled: stats.throttled(),
        not_once: all.iter().filter(|c| cw.patch_count(c["id"].as_i64().unwrap()) != 1).count(),
        inactive: all.iter().filter(|c| c["status"]["name"] == "Inactive").count(),
    }
}

/// Run and print; whether the target was met.
pub fn report(configs: usize, work_seconds: u64) -> bool {
    println!();
    println!(
        "continuation: {configs} ConnectWise configurations at {RATE} req/s, invocations capped at {work_seconds} s of work…"
    );
    let m = measure(configs, work_seconds);
    println!(
        "continuation: {} invocations, wall {:.1} s, bound {:.1} s ({} configurations / {RATE} req/s), ratio {:.3} \
         (target <= {TARGET_RATIO}), {} requests ({:.3} per configuration), {} 429s, {} updated other than once, {} \
         inactive: {}",
        m.invocations,
        m.wall.as_secs_f64(),
        m.bound_s(),
        m.configs,
        m.ratio(),
        m.requests,
        m.requests as f64 / m.configs as f64,
        m.throttled,
        m.not_once,
        m.inactive,
        if m.met() { "MET" } else { "MISSED" }
    );
    m.met()
}
