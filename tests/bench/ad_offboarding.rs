//! On-premises AD offboarding: 200 AD users of one client offboarded on the Samba AD DC of
//! the run (scripts/with-samba.sh), [`AT_ONCE`] at a time, every AD action: the account
//! disabled, the password reset (over LDAPS), employeeID and manager cleared, the group
//! membership removed, the account moved to the disabled users OU. Reported: wall time,
//! time per user, LDAP operations per user (the adapter's count of operations sent: a
//! figure, not a guarantee), tasks confirmed when read back, and users found not fully
//! offboarded when the DC is read over a connection of the bench's own (must be 0).
//!
//! There is no vendor limit to be bound by: a DC answers as fast as it can. The run is
//! MET when every user is offboarded and every task was read back confirmed.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use offramp::adapters::ldap::LdapDirectory;
use offramp::domain::{IdentityMode, PsaKind};
use offramp::workflows::offboard_user::report::{OffboardStatus, TaskResult};
use offramp::workflows::offboard_user::{ActionOptions, OffboardUserReport, OffboardUserRequest, offboard_user};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::offboarding::{UserHarness, request};
use offramp_tests::samba::{AdFixture, TestUser, ad_settings};
use serde_json::{Value, json};

const USERS: usize = 200;
/// Users offboarded at once (each one's AD tasks go one after the other).
const AT_ONCE: usize = 8;

fn actions() -> ActionOptions {
    ActionOptions {
        disable_account: true,
        reset_password: true,
        clear_employee_id: true,
        clear_manager: true,
        remove_groups: true,
        move_to_disabled_ou: true,
        ..ActionOptions::default()
    }
}

/// The child: the run, its figures on stdout.
pub fn child() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!("{}", runtime.block_on(run()));
}

async fn run() -> Value {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..Default::default() }).await.expect("sandbox");
    let ad = AdFixture::new("bench").await;
    let users = ad.create_users(USERS).await;
    add_to_group(&ad, &users).await;
    let ldap = Arc::new(LdapDirectory::new(ad_settings()).expect("LDAP adapter"));
    let mut h = UserHarness::new(&sb, PsaKind::ConnectWise);
    h.onprem = Some(ldap.clone());
    h.set_client_setting("ad_disabled_ou", &ad.disabled).await;
    let deps = h.deps();
    let before = ldap.operations_sent();
    let start = Instant::now();
    let reports: Vec<OffboardUserReport> = futures::stream::iter(&users)
        .map(|user| {
            let request = OffboardUserRequest {
                tenant: None,
                directory: Some(IdentityMode::OnPrem),
                ..request(&user.sam, actions())
            };
            Box::pin(offboard_user(&deps, request))
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let wall = start.elapsed().as_secs_f64();
    let operations = ldap.operations_sent() - before;
    let done = |r: &OffboardUserReport| r.tasks.iter().filter(|t| t.result == TaskResult::Done).count();
    let verified = |r: &OffboardUserReport| r.tasks.iter().filter(|t| t.verified == Some(true)).count();
    json!({
        "wall_s": wall,
        "operations": operations,
        "completed": reports.iter().filter(|r| r.status == OffboardStatus::Completed).count(),
        "done": reports.iter().map(done).sum::<usize>(),
        "verified": reports.iter().map(verified).sum::<usize>(),
        // The password cannot be read back: one task per user is not judged.
        "readable": reports.iter().map(done).sum::<usize>() - USERS,
        "lost": not_offboarded(&ad, &users).await,
    })
}

/// Every bench user joins the fixture's security group (one membership each to remove).
async fn add_to_group(ad: &AdFixture, users: &[TestUser]) {
    let mut admin = ad.admin.clone();
    for chunk in users.chunks(50) {
        let members: std::collections::HashSet<Vec<u8>> = chunk.iter().map(|u| u.dn.as_bytes().to_vec()).collect();
        let change = ldap3::Mod::Add(b"member".to_vec(), members);
        admin.modify(&ad.security_group, vec![change]).await.expect("modify").success().expect("members added");
    }
}

/// Users the DC does not show disabled, moved, without employeeID, manager and group.
async fn not_offboarded(ad: &AdFixture, users: &[TestUser]) -> usize {
    let mut admin = ad.admin.clone();
    let attrs = vec!["userAccountControl", "employeeID", "manager", "memberOf", "sAMAccountName"];
    let (entries, _) = admin
        .search(&ad.disabled, ldap3::Scope::OneLevel, "(objectClass=user)", attrs)
        .await
        .expect("search")
        .success()
        .expect("search ok");
    let offboarded = entries
        .into_iter()
        .map(ldap3::SearchEntry::construct)
        .filter(|e| {
            let uac: u32 = e.attrs.get("userAccountControl").and_then(|v| v[0].parse().ok()).unwrap_or(0);
            uac & 2 == 2
                && !e.attrs.contains_key("employeeID")
                && !e.attrs.contains_key("manager")
                && !e.attrs.contains_key("memberOf")
        })
        .count();
    users.len().saturating_sub(offboarded)
}

/// The parent: the run as a child process, reported; `true` when it is met.
pub fn report(bin: &std::path::Path) -> bool {
    println!("on-premises AD: {USERS} users on the Samba AD DC, {AT_ONCE} at once, every AD action…");
    let mut command = Command::new(bin.join("offramp-bench"));
    command.arg("ad").stdout(std::process::Stdio::piped());
    let (output, peak_kib) = crate::run_measured_output(&mut command);
    let figures: Value = serde_json::from_str(output.lines().last().unwrap_or("{}")).unwrap_or(Value::Null);
    let number = |key: &str| figures[key].as_u64().unwrap_or(u64::MAX);
    let wall = figures["wall_s"].as_f64().unwrap_or(f64::MAX);
    let met = number("completed") == USERS as u64 && number("lost") == 0 && number("verified") == number("readable");
    println!(
        "  ad       wall {wall:.1} s ({:.0} ms per user), {:.1} LDAP operations per user, {} tasks done, {} of {} \
         read back confirmed, completed {}/{USERS}, not offboarded {}; peak {:.1} MiB — {}",
        wall * 1000.0 / USERS as f64,
        number("operations") as f64 / USERS as f64,
        number("done"),
        number("verified"),
        number("readable"),
        number("completed"),
        number("lost"),
        peak_kib as f64 / 1024.0,
        if met { "MET" } else { "MISSED" }
    );
    met
}
