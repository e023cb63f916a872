//! A configuration deactivation that outlives one invocation, through the state machine:
//! the deployment of tests/support/deployment.rs (moto's Step Functions interpreter running
//! `infra/statemachine/client-offboarding.asl.json`, the release Lambda binaries under
//! `cargo lambda watch`, the trail in DynamoDB on moto) runs a chain of the one step
//! `deactivate_configs` for the bench client (ConnectWise company 500, [`CONFIGS`]
//! configurations by default). Each invocation of `deactivate-configs` is capped at
//! [`WORK_SECONDS`] of work (`OFFRAMP_INVOCATION_MAX_SECONDS`; the emulator gives no
//! deadline of its own), returns its `continuation`, and the definition's `Choice` sends
//! the step again until it is done. The ConnectWise sandbox serves [`RATE`] requests/s
//! (429 beyond), 50 ms latency; the functions pace at the same rate
//! (`CONNECTWISE_RATE_LIMIT`). ConnectWise publishes no quota
//! (docs/vendors/connectwise.md#rate-limits): 8 is `make bench`'s stand-in for the forward
//! runs; this run uses a rate an operator who knows the instance's limit would configure.
//!
//! Printed: invocations (the step's `paused` events in the trail, plus one), the
//! execution's wall time, the bound (the least requests one uninterrupted run of the step
//! needs / the rate), the ratio, requests and 429s counted by the sandbox, the
//! configurations PATCHed other than exactly once (counted in the sandbox, target 0), and
//! the configurations whose trail holds other than exactly one `changed` record (counted in
//! the audit trail, target 0). A resume reads only the configurations it is about to work
//! on, one id range of 1,000 at a time, and the whole client once in the last invocation
//! (docs/reliability.md#runs-across-invocations).
//!
//! `offramp-bench continuation [CONFIGS] [WORK_SECONDS] [RATE]`; `make bench` runs the
//! defaults, which are the figure: 100,000 configurations.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::types::ExecutionStatus;
use offramp::domain::{GLOBAL_SCOPE, ItemOutcome, OperationEventKind, Workflow};
use offramp::entry::{Function, FunctionServices};
use offramp::ports::AuditStore;
use offramp::workflows::org_settings::{CHAIN_RECIPIENTS, CHAIN_REQUIRE_APPROVAL, GUARD_MAX_CONFIGURATIONS};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::deployment::Deployment;
use serde_json::{Value, json};

/// Configurations of the default run through the state machine: the figure. moto's
/// DynamoDB as installed cannot hold it (every transaction deep-copies the table, a query
/// walks the whole table for every page, `ClientRequestToken` is ignored), so `make bench`
/// runs the bench's moto (scripts/moto_bench_server.py): moto's answers, fast enough.
pub const CONFIGS: usize = 100_000;
/// Work per invocation.
pub const WORK_SECONDS: u64 = 30;
/// Requests per second the sandbox allows and the functions pace at (a stated setting:
/// ConnectWise publishes no quota).
pub const RATE: u32 = 100;
const LATENCY: Duration = Duration::from_millis(50);
/// Most wall time over the bound the run may take.
const TARGET_RATIO: f64 = 1.15;
/// The bench client (company 500: offboarded, `bench_client_configs` configurations).
const CLIENT: &str = "500";

/// What sends the step again after each invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Through {
    /// The deployment: moto's Step Functions interpreter, the release Lambda binaries, the
    /// trail in DynamoDB on moto.
    StateMachine,
    /// The `deactivate-configs` Lambda entry (`FunctionServices::handle_until`, as
    /// `crate::lambda` calls it) in a loop in this process, under a 15-minute deadline,
    /// the trail in SQLite: what the state machine's `Choice` does, without moto and the
    /// chain's own stages (`offramp-bench continuation N S RATE entry`; not in `make bench`).
    LambdaEntry,
}

impl Through {
    pub fn parse(arg: Option<&str>) -> Self {
        if arg == Some("entry") { Through::LambdaEntry } else { Through::StateMachine }
    }

    fn name(self) -> &'static str {
        match self {
            Through::StateMachine => "through the state machine (moto) and the release Lambda binaries",
            Through::LambdaEntry => "through the Lambda entry in a loop (SQLite trail)",
        }
    }
}

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

    /// Exactly once, recorded once, every configuration done, across more than one
    /// invocation; through the Lambda entry also within [`TARGET_RATIO`] of the bound. The
    /// state machine's ratio is printed, not judged: its run waits on moto's DynamoDB (every
    /// resume reads the whole trail from it, docs/reliability.md#runs-across-invocations) and
    /// on the chain's own stages (resolve's dry run, finalize).
    pub fn met(&self, through: Through) -> bool {
        self.not_once == 0
            && self.not_recorded_once == 0
            && self.inactive == self.configs
            && (through == Through::StateMachine || self.ratio() <= TARGET_RATIO)
            && self.invocations > 1
    }
}

pub fn measure(configs: usize, work_seconds: u64, rate: u32, through: Through) -> Measurement {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match through {
        Through::StateMachine => runtime.block_on(run(configs, work_seconds, rate)),
        Through::LambdaEntry => runtime.block_on(run_entry(configs, work_seconds, rate)),
    }
}

/// The deployment with the release binaries, the functions paced at `rate`, each
/// invocation of `deactivate-configs` capped at `work_seconds`; the client's settings: no
/// approval, a guard the client's size.
async fn deploy(configs: usize, work_seconds: u64, rate: u32) -> Deployment {
    let sandbox = SandboxConfig {
        large_client_configs: 0,
        bench_client_configs: configs,
        rate_limit_per_sec: Some(rate),
        latency: LATENCY,
        ..SandboxConfig::default()
    };
    let mut d = Deployment::start(sandbox, "bench-continuation").await;
    d.binaries = Some(crate::release_dir());
    for function in ["orchestrator", "deactivate-configs"] {
        d.set_env(function, "CONNECTWISE_RATE_LIMIT", &rate.to_string());
    }
    d.set_env("deactivate-configs", "OFFRAMP_INVOCATION_MAX_SECONDS", &work_seconds.to_string());
    d.put_setting(GLOBAL_SCOPE, CHAIN_REQUIRE_APPROVAL, "false").await;
    d.put_setting(GLOBAL_SCOPE, CHAIN_RECIPIENTS, "ops@msp.example").await;
    d.put_setting(CLIENT, GUARD_MAX_CONFIGURATIONS, &configs.max(1).to_string()).await;
    d.start_functions();
    d
}

async fn run(configs: usize, work_seconds: u64, rate: u32) -> Measurement {
    let d = deploy(configs, work_seconds, rate).await;
    let input = json!({ "client_id": CLIENT, "steps": ["deactivate_configs"], "reason": "continuation bench" });
    let started = Instant::now();
    let execution = d
        .sfn
        .start_execution()
        .state_machine_arn(&d.machine)
        .name("continuation-bench")
        .input(input.to_string())
        .send()
        .await
        .expect("the execution starts");
    let done = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let described = d.execution(execution.execution_arn()).await;
        if described.status() != &ExecutionStatus::Running {
            break described;
        }
    };
    let wall = started.elapsed();
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "{done:?} (log: {})", d.emulator.log().display());
    let report: Value = serde_json::from_str(done.output().unwrap_or("{}")).unwrap_or_default();
    let parent = report["operation_id"].as_str().expect("the chain's operation").to_string();
    let (invocations, not_recorded_once) = step_trail(&d.audit, &parent).await;
    measured(&d.sandbox, configs, invocations, wall, rate, not_recorded_once)
}

/// The Lambda entry in a loop, fed each report's `continuation.operation_id` until a report
/// has none.
async fn run_entry(configs: usize, work_seconds: u64, rate: u32) -> Measurement {
    let sandbox = Sandbox::start(SandboxConfig {
        large_client_configs: 0,
        bench_client_configs: configs,
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
        "client_id": CLIENT, "override_blast_radius": true, "initiated_by": "bench", "reason": "continuation bench",
    });
    let started = Instant::now();
    let mut invocations = 0;
    let operation_id = loop {
        invocations += 1;
        // A 15-minute Lambda invocation, as the runtime's context says it.
        let lambda_deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 900_000;
        let deadline = services.invocation_limits().deadline(lambda_deadline_ms);
        let answer = services.handle_until(Function::DeactivateConfigs, event, "lambda:bench", deadline).await;
        let Some(continuation) = answer.get("continuation") else {
            assert_eq!(answer["success"], true, "the last invocation: {answer}");
            break answer["operation_id"].as_str().unwrap_or_default().to_string();
        };
        event = json!({ "operation_id": continuation["operation_id"], "initiated_by": "bench" });
    };
    let wall = started.elapsed();
    let FunctionServices::Workflows(workflows) = &services else { panic!("the workflows' services") };
    let detail = workflows.audit.operation(&operation_id).await.expect("trail").expect("the operation");
    measured(&sandbox, configs, invocations, wall, rate, changed_other_than_once(&detail))
}

/// The simulator's counts of the bench client after a run.
fn measured(
    sandbox: &Sandbox,
    configs: usize,
    invocations: usize,
    wall: Duration,
    rate: u32,
    not_recorded_once: usize,
) -> Measurement {
    let cw = sandbox.connectwise();
    let all = cw.configurations_of(500);
    let stats = sandbox.stats();
    Measurement {
        configs,
        invocations,
        wall,
        rate,
        not_recorded_once,
        requests: stats.by_vendor.get("connectwise").copied().unwrap_or(0),
        throttled: stats.throttled(),
        not_once: all.iter().filter(|c| cw.patch_count(c["id"].as_i64().unwrap()) != 1).count(),
        inactive: all.iter().filter(|c| c["status"]["name"] == "Inactive").count(),
    }
}

/// The applied `deactivate-configs` child of the chain: its invocations (one, plus one per
/// `paused` event) and its configurations recorded `changed` other than exactly once.
async fn step_trail(audit: &dyn AuditStore, parent: &str) -> (usize, usize) {
    let children = audit.child_operations(parent).await.expect("the chain's children");
    let step = children
        .iter()
        .find(|c| c.workflow == Workflow::DeactivateConfigs && !c.dry_run)
        .expect("the applied configuration step");
    let detail = audit.operation(&step.operation_id).await.expect("trail").expect("the step's operation");
    let paused = detail.events.iter().filter(|e| e.kind == OperationEventKind::Paused).count();
    (paused + 1, changed_other_than_once(&detail))
}

/// Configurations of the operation whose trail holds other than exactly one `changed`
/// record (every configuration of the fixture is to be changed once).
fn changed_other_than_once(detail: &offramp::domain::OperationDetail) -> usize {
    let mut changed: BTreeMap<&str, usize> =
        detail.snapshots.iter().map(|snapshot| (snapshot.item_id.as_str(), 0)).collect();
    for change in detail.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed) {
        *changed.entry(change.item_id.as_str()).or_default() += 1;
    }
    changed.values().filter(|count| **count != 1).count()
}

/// Run and print; whether the target was met.
pub fn report(configs: usize, work_seconds: u64, rate: u32, through: Through) -> bool {
    println!();
    println!(
        "continuation: {configs} ConnectWise configurations {}, {rate} req/s, invocations capped at {work_seconds} s \
         of work…",
        through.name()
    );
    let m = measure(configs, work_seconds, rate, through);
    println!(
        "continuation: {} invocations, wall {:.1} s, bound {:.1} s ({} configurations / {rate} req/s), ratio {:.3} \
         ({}), {} requests ({:.3} per configuration), {} 429s, {} updated other than once \
         (sandbox), {} recorded as changed other than once (trail), {} inactive: {}",
        m.invocations,
        m.wall.as_secs_f64(),
        m.bound_s(),
        m.configs,
        m.ratio(),
        if through == Through::StateMachine { "printed, not judged" } else { "target <= 1.15" },
        m.requests,
        m.requests as f64 / m.configs as f64,
        m.throttled,
        m.not_once,
        m.not_recorded_once,
        m.inactive,
        if m.met(through) { "MET" } else { "MISSED" }
    );
    m.met(through)
}
