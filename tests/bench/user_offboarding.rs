//! User offboarding (workflow 003) in `make bench`: 100 leavers of one tenant, every
//! action, against the sandbox's Microsoft 365 at Graph's default throttling (3,000 writes
//! per 150 s and 5,000 resource units per 10 s for a tenant of 50–500 users,
//! docs/vendors/microsoft-graph.md#directory-throttling; Exchange Online has no published
//! limit the sandbox could enforce, docs/vendors/exchange-online.md) with 50 ms latency per
//! request, once with `$batch` and once without.
//!
//! Each run is a child process (`offramp-bench users batch|single`) holding the sandbox and
//! the workflow; it prints one JSON line of figures counted by the simulator. The parent
//! reads its peak memory (wait4) and judges: MET when the wall time is within 1.15 of the
//! bound, Graph requests per leaver ≤ 12 on average (with `$batch`), no 429 left the run
//! short, and no action lost or repeated (every leaver found offboarded; no write applied
//! twice).
//!
//! The bound: the least time the vendor's limits and the clients' concurrency allow for
//! the requests the run made. Graph's quotas bind only past 3,000 writes or 5,000 units in
//! a window; below them the bound is the time the requests take at the most the clients
//! send at once (8 per HTTP client, the production default), one latency each, on the
//! busiest system (Exchange Online: a cmdlet per change), plus the few requests of a
//! leaver no other can overlap ([`bound_s`]).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use offramp::adapters::exchange::ExchangeMailboxes;
use offramp::adapters::graph::GraphDirectory;
use offramp::domain::PsaKind;
use offramp::http::HttpSettings;
use offramp::workflows::offboard_user::report::{OffboardStatus, TaskResult};
use offramp::workflows::offboard_user::{ActionOptions, OffboardUserReport, offboard_user};
use offramp_sandbox::m365::{M365_TENANT_DOMAIN, M365_TENANT_ID};
use offramp_sandbox::{GRAPH_CLIENT_SECRET, Sandbox, SandboxConfig};
use offramp_tests::offboarding::{UserHarness, every_action, m365_settings, request};

const LEAVERS: usize = 100;
/// Memberships per leaver, cycling through every kind of group.
const MEMBERSHIPS: usize = 12;
const LATENCY_MS: u64 = 50;
/// Leavers offboarded at once (a chain step's fan-out).
const LEAVERS_AT_ONCE: usize = 100;
/// Requests in flight per HTTP client (HttpSettings' default).
const IN_FLIGHT: u64 = 8;
const TARGET_RATIO: f64 = 1.15;
const TARGET_REQUESTS_PER_LEAVER: f64 = 12.0;

/// Every action of the seed's form, as the tests use them.
fn actions() -> ActionOptions {
    every_action()
}

/// The child: one run, its figures on stdout.
pub fn child(batches: bool) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let figures = runtime.block_on(run(batches));
    println!("{figures}");
}

async fn run(batches: bool) -> Value {
    let config =
        SandboxConfig { large_client_configs: 0, latency: Duration::from_millis(LATENCY_MS), ..Default::default() };
    let sb = Sandbox::start(config).await.expect("sandbox");
    let ids = sb.m365().add_bench_leavers(M365_TENANT_ID, LEAVERS, MEMBERSHIPS);
    let seeded_kib = peak_rss_kib();
    let mut h = UserHarness::new(&sb, PsaKind::ConnectWise);
    let settings = m365_settings(&sb, GRAPH_CLIENT_SECRET);
    let directory = GraphDirectory::new(&settings, HttpSettings::default()).expect("Graph");
    h.directory = if batches { directory } else { directory.without_batches() };
    h.mailboxes = ExchangeMailboxes::new(&settings, HttpSettings::default()).expect("Exchange");
    let deps = h.deps();
    let (graph_before, stats_before) = (sb.m365().requests(M365_TENANT_ID), sb.stats());
    let start = Instant::now();
    let reports: Vec<OffboardUserReport> = futures::stream::iter(0..LEAVERS)
        .map(|n| offboard_user(&deps, request(&format!("bench.leaver.{n}@{M365_TENANT_DOMAIN}"), actions())))
        .buffer_unordered(LEAVERS_AT_ONCE)
        .collect()
        .await;
    let wall = start.elapsed().as_secs_f64();
    let graph = sb.m365().requests(M365_TENANT_ID) - graph_before;
    let stats = sb.stats();
    let routes = |prefix: &str| -> u64 {
        let count = |s: &offramp_sandbox::StatsSnapshot| -> u64 {
            s.by_route.iter().filter(|(route, _)| route.contains(prefix)).map(|(_, n)| n).sum()
        };
        count(&stats) - count(&stats_before)
    };
    let (lost, repeated) = (lost_actions(&sb, &ids, &reports), repeated_writes(&sb));
    json!({
        "batches": batches,
        "wall_s": wall,
        "graph_outer": graph.outer,
        "graph_batches": graph.batches,
        "graph_inner": graph.inner,
        "exchange": routes("/exo/adminapi/beta/InvokeCommand"),
        "total": stats.total() - stats_before.total(),
        "throttled": sb.m365().throttled(),
        "writes": sb.m365().all_writes().values().sum::<u64>(),
        "completed": reports.iter().filter(|r| r.status == OffboardStatus::Completed).count(),
        "tasks": reports.iter().map(|r| r.tasks.len()).sum::<usize>(),
        "failed": reports.iter().map(|r| r.summary.failed).sum::<usize>(),
        "lost": lost,
        "repeated": repeated,
        "seeded_kib": seeded_kib,
    })
}

/// Leavers not found as every done or skipped task says: disabled, no licence, a shared
/// mailbox, and only the memberships reported skipped left.
fn lost_actions(sb: &Sandbox, ids: &[String], reports: &[OffboardUserReport]) -> usize {
    let m365 = sb.m365();
    ids.iter()
        .filter(|id| {
            let Some(report) = reports.iter().find(|r| r.user.as_ref().is_some_and(|u| &u.id == *id)) else {
                return true;
            };
            let user = m365.user(M365_TENANT_ID, id).expect("leaver");
            let kept = report.tasks.iter().filter(|t| t.action == offramp::domain::OffboardAction::RemoveGroups);
            let kept = kept.filter(|t| t.result == TaskResult::Skipped).count();
            let mailbox = m365.mailbox(M365_TENANT_ID, id).expect("mailbox");
            user.account_enabled
                || user.manager_id.is_some()
                || user.employee_id.is_some()
                || !m365.licences(M365_TENANT_ID, id).is_empty()
                || format!("{:?}", mailbox.kind) != "Shared"
                || m365.group_ids_of(M365_TENANT_ID, id).len() != kept
        })
        .count()
}

/// Writes the simulator applied more than once.
fn repeated_writes(sb: &Sandbox) -> u64 {
    sb.m365().all_writes().values().filter(|n| **n > 1).map(|n| n - 1).sum()
}

/// This process's peak resident memory so far (getrusage), KiB.
pub(crate) fn peak_rss_kib() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64
}

/// The least wall time: Graph's quotas where they bind; else the busiest client's requests
/// at [`IN_FLIGHT`] at once, one latency each, plus what no client can overlap: a leaver's
/// first two reads (the user, then the `$batch`) before its first mailbox request, and after
/// its last one the e-mail and the summary note.
fn bound_s(figures: &Value) -> f64 {
    let number = |key: &str| figures[key].as_u64().unwrap_or(0);
    let latency = LATENCY_MS as f64 / 1000.0;
    let writes = number("writes");
    let quota = if writes > 3_000 { ((writes - 1) / 3_000) as f64 * 150.0 } else { 0.0 };
    let others = number("total").saturating_sub(number("graph_outer") + number("exchange"));
    let busiest = number("graph_outer").max(number("exchange")).max(others);
    quota.max(busiest as f64 * latency / IN_FLIGHT as f64 + 4.0 * latency)
}

/// The parent: both runs as child processes, reported; `true` when every target is met.
pub fn report(bin: &Path) -> bool {
    println!("user offboarding: {LEAVERS} leavers, every action, Graph's default throttling, {LATENCY_MS} ms latency…");
    let mut ok = true;
    for batches in [true, false] {
        let mut command = Command::new(bin.join("offramp-bench"));
        command.args(["users", if batches { "batch" } else { "single" }]).stdout(std::process::Stdio::piped());
        let (output, peak_kib) = crate::run_measured_output(&mut command);
        let figures: Value = serde_json::from_str(output.lines().last().unwrap_or("{}")).unwrap_or(Value::Null);
        ok &= judge(&figures, peak_kib, batches);
    }
    ok
}

fn judge(figures: &Value, peak_kib: u64, batches: bool) -> bool {
    let number = |key: &str| figures[key].as_u64().unwrap_or(u64::MAX);
    let wall = figures["wall_s"].as_f64().unwrap_or(f64::MAX);
    let bound = bound_s(figures);
    let per_leaver = number("graph_outer") as f64 / LEAVERS as f64;
    let ratio = wall / bound;
    let clean = number("lost") == 0 && number("repeated") == 0 && number("completed") == LEAVERS as u64;
    let met = clean && ratio <= TARGET_RATIO && (!batches || per_leaver <= TARGET_REQUESTS_PER_LEAVER);
    println!(
        "  {:<8} wall {wall:.1} s, bound {bound:.1} s, ratio {ratio:.2}; Graph {per_leaver:.1} requests per leaver \
         ({} outer, {} batches, {} inner), Exchange {} requests, {} 429s, {} tasks ({} failed), completed {}/{LEAVERS}, \
         lost {}, repeated {}; peak {:.1} MiB ({:.1} MiB with the simulator seeded, before the run) — {}",
        if batches { "$batch" } else { "single" },
        number("graph_outer"),
        number("graph_batches"),
        number("graph_inner"),
        number("exchange"),
        number("throttled"),
        number("tasks"),
        number("failed"),
        number("completed"),
        number("lost"),
        number("repeated"),
        peak_kib as f64 / 1024.0,
        number("seeded_kib") as f64 / 1024.0,
        if met { "MET" } else { "MISSED" }
    );
    met
}
