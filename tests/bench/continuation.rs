//! A configuration deactivation that outlives one invocation: the `deactivate-configs`
//! Lambda entry (`FunctionServices::handle_until`, as `crate::lambda` calls it) in a loop,
//! each invocation capped at [`WORK_SECONDS`] of work by `OFFRAMP_INVOCATION_MAX_SECONDS`
//! under a 15-minute Lambda deadline, fed its report's `continuation.operation_id` until a
//! report has none (what the state machine's `Choice` does). The ConnectWise sandbox serves
//! [`RATE`] requests/s (429 beyond), 50 ms latency; the client paces at the same rate
//! (`CONNECTWISE_RATE_LIMIT`). ConnectWise publishes no quota
//! (docs/vendors/connectwise.md#rate-limits): 8 is `make bench`'s stand-in for the forward
//! runs; this run uses 50, a setting an operator who knows the instance's limit would
//! configure, so the default size (10,000) takes a few minutes and 100,000 about 35.
//!
//! Printed: invocations, wall time, the bound (the least requests one uninterrupted run
//! needs / the rate), the ratio, requests and 429s counted by the sandbox, the
//! configurations PATCHed other than exactly once (counted in the sandbox, target 0), and
//! the configurations whose trail holds other than exactly one `changed` record (counted in
//! the audit trail, target 0). A resume reads only the configurations it is about to work
//! on, one id range of 1,000 at a time, and the whole client once in the last invocation
//! (docs/reliability.md#runs-across-invocations).
//!
//! `offramp-bench continuation [CONFIGS] [WORK_SECONDS] [RATE]`; `make bench` runs the defaults.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use offramp::domain::ItemOutcome;
use offramp::entry::{Function, FunctionServices};
use offramp_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

/// Configurations of the default run.
pub const CONFIGS: usize = 10_000;
/// Work per invocation.
pub const WORK_SECONDS: u64 = 30;
/// Requests per second the sandbox allows and the client paces at (a stated setting:
/// ConnectWise publishes no quota).
pub const RATE: u32 = 50;
const LATENCY: Duration = Duration::from_millis(50);
/// Most wall time over the bound the run may take.
const TARGET_RATIO: f64 = 1.15;

pub struct Measurement {
    pub configs: usize,
    pub invocations: usize,
    pub wall: Duration,
    pub rate: u32,
    pub requests: u64,
    pub throttled: u64,
    /// Configurations whose trail holds other than exactly one `changed` record.
    pub not_recorded_once: usize,
    /// Configurations PATCHed other than exactly once.
    pub not_once: usize,
    pub inactive: usize,
}

impl Measurement {
    /// The least wall time ConnectWise's limit allows one uninterrupted run: the company,
    /// the status table, ⌈n/1000⌉ pages and n updates, at the configured rate.
    pub fn bound_s(&self) -> f64 {
        let n = self.configs as u64;
        (2 + n.div_ceil(1000) + n) as f64 / f64::from(self.rate)
    }

    pub fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.bound_s()
    }

    pub fn met(&self) -> bool {
        self.not_once == 0
            && self.not_recorded_once == 0
            && self.inactive == self.configs
            && self.ratio() <= TARGET_RATIO
            && self.invocations > 1
    }
}

pub fn measure(configs: usize, work_seconds: u64, rate: u32) -> Measurement {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(configs, work_seconds, rate))
}

async fn run(configs: usize, work_seconds: u64, rate: u32) -> Measurement {
    let sandbox = Sandbox::start(SandboxConfig {
        large_client_configs: configs,
        rate_limit_per_sec: Some(rate),
        latency: LATENCY,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = offramp_tests::connectwise::source(&sandbox, &dir.path().join("audit.sqlite"));
    source.set("CONNECTWISE_RATE_LIMIT", rate.to_string());
    source.set("OFFRAMP_INVOCATION_MAX_SECONDS", work_seconds.to_string());
    let services = FunctionServices::build(Function::DeactivateConfigs, &source).await.expect("services");
    let mut event = json!({
        "client_id": 300, "allow_active_client": true, "override_blast_radius": true,
        "initiated_by": "bench", "reason": "continuation bench",
    });
    let started = Instant::now();
    let mut invocations = 0;
    let mut operation_id: String;
    loop {
        invocations += 1;
        // A 15-minute Lambda invocation, as the runtime's context says it.
        let lambda_deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 900_000;
        let deadline = services.invocation_limits().deadline(lambda_deadline_ms);
        let answer = services.handle_until(Function::DeactivateConfigs, event, "lambda:bench", deadline).await;
        operation_id = answer["operation_id"].as_str().unwrap_or_default().to_string();
        let Some(continuation) = answer.get("continuation") else {
            assert_eq!(answer["success"], true, "the last invocation: {answer}");
            break;
        };
        event = json!({ "operation_id": continuation["operation_id"], "initiated_by": "bench" });
    }
    let wall = started.elapsed();
    let not_recorded_once = changed_other_than_once(&services, &operation_id).await;
    let cw = sandbox.connectwise();
    let all = cw.configurations_of(300);
    let stats = sandbox.stats();
    Measurement {
        configs,
        invocations,
        wall,
        rate,
        not_recorded_once,
        requests: stats.total(),
        throttled: stats.throttled(),
        not_once: all.iter().filter(|c| cw.patch_count(c["id"].as_i64().unwrap()) != 1).count(),
        inactive: all.iter().filter(|c| c["status"]["name"] == "Inactive").count(),
    }
}

/// Configurations of the operation whose trail holds other than exactly one `changed`
/// record (every configuration of the fixture is to be changed once).
async fn changed_other_than_once(services: &FunctionServices, operation_id: &str) -> usize {
    let FunctionServices::Workflows(services) = services else { panic!("the workflows' services") };
    let detail = services.audit.operation(operation_id).await.expect("trail").expect("the operation");
    let mut changed: BTreeMap<&str, usize> =
        detail.snapshots.iter().map(|snapshot| (snapshot.item_id.as_str(), 0)).collect();
    for change in detail.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed) {
        *changed.entry(change.item_id.as_str()).or_default() += 1;
    }
    changed.values().filter(|count| **count != 1).count()
}

/// Run and print; whether the target was met.
pub fn report(configs: usize, work_seconds: u64, rate: u32) -> bool {
    println!();
    println!(
        "continuation: {configs} ConnectWise configurations at {rate} req/s, invocations capped at {work_seconds} s of work…"
    );
    let m = measure(configs, work_seconds, rate);
    println!(
        "continuation: {} invocations, wall {:.1} s, bound {:.1} s ({} configurations / {rate} req/s), ratio {:.3} \
         (target <= {TARGET_RATIO}), {} requests ({:.3} per configuration), {} 429s, {} updated other than once \
         (sandbox), {} recorded as changed other than once (trail), {} inactive: {}",
        m.invocations,
        m.wall.as_secs_f64(),
        m.bound_s(),
        m.configs,
        m.ratio(),
        m.requests,
        m.requests as f64 / m.configs as f64,
        m.throttled,
        m.not_once,
        m.not_recorded_once,
        m.inactive,
        if m.met() { "MET" } else { "MISSED" }
    );
    m.met()
}
