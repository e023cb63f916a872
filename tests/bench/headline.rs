//! The headline: a full offboarding of a 100-seat client through the in-process chain
//! (`offramp client offboard`'s code path: resolve, approval bound to the plan hash, the
//! four steps, finalize), on the sandbox at each vendor's default limits, 50 ms latency per
//! request.
//!
//! The client (ConnectWise company 500): [`LEAVERS`] leavers in its Microsoft 365 tenant
//! with every cloud action and [`MEMBERSHIPS`] memberships each, [`CONTACTS`] contacts (the
//! first 100 are the leavers; the chain leaves their `disable_psa_contact` to the contacts
//! step, which deactivates every contact), [`CONFIGS`] configurations, and one IT Glue
//! organization, exported then deleted.
//!
//! Limits the sandbox enforces: ConnectWise [`CW_RATE`] requests/s (a stand-in: ConnectWise
//! publishes no quota, docs/vendors/connectwise.md#rate-limits; 10 is the client's default
//! pace, so the client runs on its defaults), Graph's default throttling (3,000 writes per
//! 150 s, 5,000 resource units per 10 s), IT Glue's 3,000 requests per 5 minutes.
//!
//! The bound: the least wall time those limits allow for the requests each vendor served
//! in the approved run, the largest of: ConnectWise requests / [`CW_RATE`]; Graph's write
//! windows; IT Glue's windows. Nothing else has a limit a run must wait for; ConnectWise's
//! pacing is what bounds a client of this shape (every contact and configuration is one
//! PATCH, and ConnectWise has no bulk update).
//!
//! Checked in the simulators, not the report: every configuration and contact of the client
//! inactive, each PATCHed exactly once; every leaver disabled, unlicensed, without manager,
//! with a shared mailbox; no Microsoft 365 write applied twice; the IT Glue organization
//! deleted after one export.
//! Checked in the audit trail ("every action audited"): every applied child operation linked
//! to the parent; one `changed` record per configuration and per contact, none twice; every
//! leaver's trail holding a change of every kind its actions make; as many group
//! memberships recorded removed as the simulator lost.
//!
//! `offramp-bench headline [LEAVERS] [CONTACTS] [CONFIGS]` runs it as a child process (for
//! its peak memory); `make bench` runs the defaults. MET: wall within [`TARGET_RATIO`] of
//! the bound and under [`TARGET_WALL_S`], and every check above clean.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use offramp::chain::{ChainStep, ClientOffboardingReport, ClientOffboardingRequest, InProcessConsent, run_chain};
use offramp::domain::{GLOBAL_SCOPE, ItemOutcome};
use offramp::entry::{FunctionServices, InProcessSteps, chain_deps};
use offramp::ports::AuditStore;
use offramp::workflows::org_settings;
use offramp_sandbox::m365::{M365_TENANT_DOMAIN, M365_TENANT_ID};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::chain::{put_setting, services_with_m365};

pub const LEAVERS: usize = 100;
pub const CONTACTS: usize = 500;
pub const CONFIGS: usize = 5_000;
const MEMBERSHIPS: usize = 12;
const LATENCY_MS: u64 = 50;
/// ConnectWise requests per second the sandbox allows (a stand-in, see above).
const CW_RATE: u64 = 10;
/// IT Glue: requests per rolling 5 minutes (docs/vendors/itglue.md#rate-limits).
const ITGLUE_WINDOW: (u64, f64) = (3_000, 300.0);
/// Graph: writes per 150 s for a tenant (docs/vendors/microsoft-graph.md#directory-throttling).
const GRAPH_WRITE_WINDOW: (u64, f64) = (3_000, 150.0);
const TARGET_RATIO: f64 = 1.15;
const TARGET_WALL_S: f64 = 600.0;
const CLIENT: &str = "500";
const CLIENT_NAME: &str = "Bench Client";
/// Every cloud action a client's defaults can name. Not here: `out_of_office` (needs a
/// text), `add_to_leaver_group` (needs the client's group), `move_to_disabled_ou` (on-prem
/// AD: measured on the Samba DC by `ad_offboarding.rs`).
const EVERY_CLOUD_ACTION: &str = "revoke_sessions,reset_password,disable_account,remove_mobile_devices,retire_devices,\
     convert_to_shared,grant_full_access,grant_send_as,hide_from_gal,forward_mail,remove_groups,transfer_ownership,\
     clear_employee_id,clear_manager,disable_psa_contact,remove_licences,notify_manager";

/// The child: one run, its figures on stdout as one JSON line.
pub fn child(leavers: usize, contacts: usize, configs: usize) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let figures = runtime.block_on(run(leavers, contacts, configs));
    println!("{figures}");
}

async fn run(leavers: usize, contacts: usize, configs: usize) -> Value {
    let sb = Sandbox::start(SandboxConfig {
        latency: Duration::from_millis(LATENCY_MS),
        rate_limit_per_sec: Some(CW_RATE as u32),
        rate_limit_connectwise_only: true,
        large_client_configs: 0,
        bench_client_configs: configs,
        bench_client_contacts: contacts,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let leaver_ids = sb.m365().add_bench_leavers(M365_TENANT_ID, leavers, MEMBERSHIPS);
    let org = sb.itglue().add_organization(CLIENT_NAME);
    let dir = tempfile::tempdir().expect("tempdir");
    let services = services(&sb, dir.path(), contacts, configs).await;
    let upns: Vec<String> = (0..leavers).map(|n| format!("bench.leaver.{n}@{M365_TENANT_DOMAIN}")).collect();
    let steps = InProcessSteps { services: &services, invoked_by: "bench".into() };
    let deps = chain_deps(&services, &steps, None).expect("deps");

    let started = Instant::now();
    let plan = run_chain(&deps, request(&upns, true), &InProcessConsent::default()).await;
    let plan_s = started.elapsed().as_secs_f64();
    assert_eq!(plan.status, "planned", "the dry run: {}", summary(&plan));
    let consent = InProcessConsent { approved_by: Some("Bench Approver".into()), plan_hash: plan.plan_hash.clone() };
    let memberships =
        |sb: &Sandbox| -> usize { leaver_ids.iter().map(|id| sb.m365().group_ids_of(M365_TENANT_ID, id).len()).sum() };
    let memberships_before = memberships(&sb);
    let before = sb.stats();
    let started = Instant::now();
    let done = run_chain(&deps, request(&upns, false), &consent).await;
    let wall = started.elapsed().as_secs_f64();
    let after = sb.stats();
    if !done.success {
        eprintln!("headline: the approved run did not succeed: {}", summary(&done));
    }
    let vendor =
        |name: &str| after.by_vendor.get(name).copied().unwrap_or(0) - before.by_vendor.get(name).copied().unwrap_or(0);
    let audited = audited(audit(&services), done.operation_id.as_deref().unwrap_or_default()).await;
    json!({
        "leavers": leavers, "contacts": contacts, "configs": configs,
        "plan_s": plan_s, "wall_s": wall,
        "status": done.status, "success": done.success, "errors": done.errors.len(),
        "connectwise": vendor("connectwise"), "graph": vendor("graph"), "exchange": vendor("exchange"),
        "entra": vendor("entra"), "itglue": vendor("itglue"), "notifications": vendor("webhook"),
        "throttled": after.throttled - before.throttled,
        "m365_throttled": sb.m365().throttled(),
        "m365_writes": sb.m365().all_writes().values().sum::<u64>(),
        "m365_repeated": sb.m365().all_writes().values().filter(|n| **n > 1).map(|n| n - 1).sum::<u64>(),
        "leavers_not_offboarded": leavers_not_offboarded(&sb, &leaver_ids),
        "memberships_removed": memberships_before - memberships(&sb),
        "configs_active": configs_where(&sb, |psa, id| psa.configuration_is_active(id) == Some(true)),
        "configs_not_once": configs_where(&sb, |psa, id| psa.update_count(id) != 1),
        "contacts_active": contacts_where(&sb, |psa, id| psa.contact_is_active(id) == Some(true)),
        "contacts_not_once": contacts_where(&sb, |psa, id| psa.contact_update_count(id) != 1),
        "itglue_org_left": sb.itglue().organization_exists(org),
        "itglue_exports": sb.itglue().export_requests(),
        "itglue_deletions": sb.itglue().deletions_requested(),
        "audited": audited,
        "peak_rss_kib_in_child": crate::user_offboarding::peak_rss_kib(),
        "routes": after.by_route.iter()
            .map(|(route, n)| (route.clone(), n - before.by_route.get(route).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect::<BTreeMap<_, _>>(),
    })
}

/// The chain's services with every system configured (ConnectWise, Microsoft 365, IT Glue,
/// the notification webhook, a SQLite trail) and the client's settings as an MSP would set
/// them for this client: its tenant, its default actions, guards raised to its size.
async fn services(sb: &Sandbox, dir: &Path, contacts: usize, configs: usize) -> FunctionServices {
    // The client's default pace (the test suite's faster setting is not a production value).
    let rate = CW_RATE.to_string();
    let pace = [("CONNECTWISE_RATE_LIMIT", rate.as_str())];
    let services = services_with_m365(sb, &dir.join("audit.sqlite"), &pace).await;
    let (configs, contacts) = (configs.max(1).to_string(), contacts.max(1).to_string());
    for (scope, key, value) in [
        (GLOBAL_SCOPE, org_settings::CHAIN_RECIPIENTS, "ops@msp.example"),
        (CLIENT, org_settings::M365_TENANT, M365_TENANT_ID),
        (CLIENT, org_settings::USER_OFFBOARDING_ACTIONS, EVERY_CLOUD_ACTION),
        (CLIENT, org_settings::GUARD_MAX_CONFIGURATIONS, configs.as_str()),
        (CLIENT, org_settings::GUARD_MAX_CONTACTS, contacts.as_str()),
        (CLIENT, org_settings::GUARD_MAX_CONTACT_SHARE, "100"),
    ] {
        put_setting(&services, scope, key, value).await;
    }
    services
}

fn audit(services: &FunctionServices) -> &dyn AuditStore {
    let FunctionServices::UserOffboarding(user) = services else { panic!("Microsoft 365 is configured") };
    user.services.audit.as_ref()
}

fn request(leavers: &[String], dry_run: bool) -> ClientOffboardingRequest {
    ClientOffboardingRequest {
        client_id: Some(CLIENT.into()),
        steps: Some(ChainStep::ALL.to_vec()),
        leavers: leavers.to_vec(),
        dry_run,
        reason: Some("Contract ended (headline bench)".into()),
        initiated_by: Some("bench@msp.example".into()),
        ..Default::default()
    }
}

fn summary(report: &ClientOffboardingReport) -> String {
    let text = serde_json::to_string(report).unwrap_or_default();
    text.chars().take(6_000).collect()
}

/// What every leaver's trail records as changed, one kind per action of
/// [`EVERY_CLOUD_ACTION`] (`mobile_device` for both device actions, `mailbox_permission`
/// for full access and send-as), and the ticket note and notification that document it.
const LEAVER_KINDS: [&str; 15] = [
    "user_sessions",
    "user_password",
    "user_account",
    "mobile_device",
    "mailbox_type",
    "mailbox_permission",
    "mailbox_visibility",
    "mailbox_forwarding",
    "group_membership",
    "group_ownership",
    "employee_id",
    "manager",
    "licence",
    "notification",
    "ticket_note",
];

/// The trail of the approved run: applied children per workflow, distinct items recorded
/// `changed` per workflow and item kind, and items (kind and id) recorded `changed` more
/// than once.
async fn audited(audit: &dyn AuditStore, parent: &str) -> Value {
    let children = audit.child_operations(parent).await.expect("children");
    let mut runs: BTreeMap<String, u64> = BTreeMap::new();
    let mut changed: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut changed_twice = 0u64;
    let mut leavers_missing_a_kind = 0u64;
    for child in children.iter().filter(|c| !c.dry_run) {
        let detail = audit.operation(&child.operation_id).await.expect("trail").expect("the child");
        let mut per_item: BTreeMap<(String, &str), u64> = BTreeMap::new();
        for change in detail.changes.iter().filter(|c| c.outcome == ItemOutcome::Changed) {
            *per_item.entry((name_of(&change.item_type), change.item_id.as_str())).or_default() += 1;
        }
        changed_twice += per_item.values().filter(|n| **n > 1).count() as u64;
        let workflow = name_of(&child.workflow);
        *runs.entry(workflow.clone()).or_default() += 1;
        let kinds: Vec<&str> = per_item.keys().map(|(kind, _)| kind.as_str()).collect();
        if workflow == "offboard-user" && LEAVER_KINDS.iter().any(|k| !kinds.contains(k)) {
            leavers_missing_a_kind += 1;
        }
        for (kind, _) in per_item.keys() {
            *changed.entry(workflow.clone()).or_default().entry(kind.clone()).or_default() += 1;
        }
    }
    json!({
        "children": runs, "changed_items": changed, "changed_twice": changed_twice,
        "leavers_missing_a_kind": leavers_missing_a_kind,
    })
}

/// A serialized enum's name (`deactivate-configs`, `configuration`, …).
fn name_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn configs_where(sb: &Sandbox, test: impl Fn(&dyn offramp_sandbox::PsaSim, i64) -> bool) -> usize {
    let psa = sb.psa("connectwise");
    psa.configuration_ids_of(500).into_iter().filter(|id| test(psa, *id)).count()
}

fn contacts_where(sb: &Sandbox, test: impl Fn(&dyn offramp_sandbox::PsaSim, i64) -> bool) -> usize {
    let psa = sb.psa("connectwise");
    psa.contact_ids_of(500).into_iter().filter(|id| test(psa, *id)).count()
}

/// Leavers the simulator does not hold offboarded: still enabled, licensed, in a group, or
/// without a shared mailbox.
fn leavers_not_offboarded(sb: &Sandbox, ids: &[String]) -> usize {
    let m365 = sb.m365();
    ids.iter()
        .filter(|id| {
            let user = m365.user(M365_TENANT_ID, id).expect("leaver");
            let mailbox = m365.mailbox(M365_TENANT_ID, id).expect("mailbox");
            user.account_enabled
                || !m365.licences(M365_TENANT_ID, id).is_empty()
                || format!("{:?}", mailbox.kind) != "Shared"
                || user.manager_id.is_some()
        })
        .count()
}

/// ConnectWise's requests by route, the most first (the sandbox's counts).
fn connectwise_routes(f: &Value) -> String {
    let others = ["/graph", "/exo", "/itglue", "/hooks", "/entra", "/autotask", "/halo"];
    let mut routes: Vec<(&String, u64)> = f["routes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(route, _)| !route.split(' ').nth(1).is_some_and(|path| others.iter().any(|o| path.starts_with(o))))
        .map(|(route, n)| (route, n.as_u64().unwrap_or(0)))
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    routes.iter().map(|(route, n)| format!("{n} {route}")).collect::<Vec<_>>().join(", ")
}

/// The least wall time the vendors' limits allow for the requests each served.
fn bound_s(f: &Value) -> f64 {
    let number = |key: &str| f[key].as_u64().unwrap_or(0);
    let windows = |requests: u64, (limit, window): (u64, f64)| (requests.saturating_sub(1) / limit) as f64 * window;
    let connectwise = number("connectwise") as f64 / CW_RATE as f64;
    connectwise.max(windows(number("m365_writes"), GRAPH_WRITE_WINDOW)).max(windows(number("itglue"), ITGLUE_WINDOW))
}

/// The parent: the run as a child process, judged and printed; `true` when MET.
pub fn report(bin: &Path, leavers: usize, contacts: usize, configs: usize) -> bool {
    println!(
        "headline: full offboarding of a {leavers}-seat client ({contacts} contacts, {configs} configurations, one IT \
         Glue organization) through the in-process chain, ConnectWise at {CW_RATE} req/s, Graph and IT Glue at their \
         limits, {LATENCY_MS} ms latency…"
    );
    let mut command = Command::new(bin.join("offramp-bench"));
    command.args(["headline-run", &leavers.to_string(), &contacts.to_string(), &configs.to_string()]);
    command.stdout(std::process::Stdio::piped());
    let (output, peak_kib) = crate::run_measured_output(&mut command);
    let figures: Value = serde_json::from_str(output.lines().last().unwrap_or("{}")).unwrap_or(Value::Null);
    judge(&figures, peak_kib)
}

fn judge(f: &Value, peak_kib: u64) -> bool {
    let number = |key: &str| f[key].as_u64().unwrap_or(u64::MAX);
    let wall = f["wall_s"].as_f64().unwrap_or(f64::MAX);
    let bound = bound_s(f);
    let ratio = wall / bound;
    let audited = &f["audited"];
    let changed = |w: &str, kind: &str| audited["changed_items"][w][kind].as_u64().unwrap_or(0);
    let (leavers, contacts, configs) = (number("leavers"), number("contacts"), number("configs"));
    let clean = f["success"] == true
        && number("configs_active") == 0
        && number("configs_not_once") == 0
        && number("contacts_active") == 0
        && number("contacts_not_once") == 0
        && number("leavers_not_offboarded") == 0
        && number("memberships_removed") > 0
        && number("m365_repeated") == 0
        && f["itglue_org_left"] == false
        && number("itglue_exports") == 1
        && audited["changed_twice"] == 0
        && audited["leavers_missing_a_kind"] == 0
        && audited["children"]["offboard-user"] == leavers
        && changed("deactivate-configs", "configuration") == configs
        && changed("deactivate-contacts", "contact") == contacts
        && changed("offboard-user", "group_membership") == number("memberships_removed");
    let (within_ratio, within_wall) = (ratio <= TARGET_RATIO, wall <= TARGET_WALL_S);
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    println!(
        "  plan (dry run of every step) {:.1} s; approved run wall {wall:.1} s, bound {bound:.1} s, ratio {ratio:.3} \
         (target <= {TARGET_RATIO}: {}; under {TARGET_WALL_S:.0} s: {}); requests: ConnectWise {} ({:.2} per contact \
         and configuration; {}), Graph {}, Exchange {}, Entra {}, IT Glue {}, notifications {}; 429s {} (+{} Graph); \
         Microsoft 365 writes {} ({} repeated); leavers not offboarded {}; memberships removed {}; configurations \
         active {} / updated other than once {}; contacts active {} / updated other than once {}; IT Glue \
         organization left {}, exports {}; trail: {}; status {}; peak {:.1} MiB — {}",
        f["plan_s"].as_f64().unwrap_or(0.0),
        verdict(within_ratio),
        verdict(within_wall),
        number("connectwise"),
        number("connectwise") as f64 / (contacts + configs) as f64,
        connectwise_routes(f),
        number("graph"),
        number("exchange"),
        number("entra"),
        number("itglue"),
        number("notifications"),
        number("throttled"),
        number("m365_throttled"),
        number("m365_writes"),
        number("m365_repeated"),
        number("leavers_not_offboarded"),
        number("memberships_removed"),
        number("configs_active"),
        number("configs_not_once"),
        number("contacts_active"),
        number("contacts_not_once"),
        f["itglue_org_left"],
        number("itglue_exports"),
        audited,
        f["status"],
        peak_kib as f64 / 1024.0,
        if clean { "every check clean" } else { "CHECKS FAILED" }
    );
    clean && within_ratio && within_wall
}
