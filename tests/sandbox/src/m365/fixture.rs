//! The Microsoft 365 fixture: a default customer tenant with every kind of object the
//! user-offboarding workflow meets, a second tenant (tokens must not cross), a tenant without
//! consent, and builders for a leaver with many memberships and for bench leavers.
//!
//! Default tenant [`M365_TENANT_ID`] (`contoso.example`):
//!
//! | Object | Id constant | What it is |
//! |---|---|---|
//! | Megan Manager | [`M365_MANAGER_ID`] | the leavers' manager, mailbox |
//! | Lee Leaver | [`M365_LEAVER_ID`] | cloud-only, employeeId, E3 direct + EMS by group, mailbox with one mobile device, two Intune devices |
//! | Cora Colleague | [`M365_COLLEAGUE_ID`] | mailbox (a trustee for FullAccess/SendAs), one Intune device |
//! | Sam Synced | [`M365_SYNCED_LEAVER_ID`] | synced from AD (sAMAccountName, DN, ImmutableId), employeeId, manager, mailbox with a mobile device |
//! | Project Falcon | [`M365_GROUP_UNIFIED`] | Microsoft 365 group, owners Lee + Cora |
//! | Finance Team | [`M365_GROUP_SECURITY`] | cloud security group |
//! | All Staff | [`M365_GROUP_DYNAMIC`] | dynamic security group |
//! | HQ Printers | [`M365_GROUP_SYNCED`] | security group synced from AD |
//! | Sales | [`M365_GROUP_DISTRIBUTION`] | distribution list |
//! | Finance Approvers | [`M365_GROUP_MAIL_SECURITY`] | mail-enabled security group |
//! | Licensing EMS | [`M365_GROUP_LICENSING`] | security group assigning EMS |
//! | Lee's Team | [`M365_GROUP_SOLE_OWNER`] | Microsoft 365 group whose only owner is Lee |
//! | HQ Announcements | [`M365_GROUP_SYNCED_DISTRIBUTION`] | distribution list synced from AD |

use std::collections::BTreeSet;

use super::model::{Group, Mailbox, ManagedDevice, MobileDevice, Sku, Tenant, User};
use super::{M365Sim, State};

pub const M365_TENANT_ID: &str = "8b1f4c2e-6d3a-4e59-9f70-1a2b3c4d5e6f";
pub const M365_TENANT_DOMAIN: &str = "contoso.example";
/// A second customer tenant: its users are invisible to the default tenant's tokens.
pub const M365_OTHER_TENANT_ID: &str = "2c7d9e11-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
pub const M365_OTHER_TENANT_DOMAIN: &str = "fabrikam.example";
/// A user of the second tenant.
pub const M365_OTHER_USER_ID: &str = "00000001-0000-4000-8000-0000000000f1";
/// A customer tenant where the app has no consented service principal.
pub const M365_UNCONSENTED_TENANT_ID: &str = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";

pub const M365_MANAGER_ID: &str = "00000001-0000-4000-8000-000000000001";
pub const M365_LEAVER_ID: &str = "00000001-0000-4000-8000-000000000002";
pub const M365_COLLEAGUE_ID: &str = "00000001-0000-4000-8000-000000000003";
pub const M365_SYNCED_LEAVER_ID: &str = "00000001-0000-4000-8000-000000000004";
pub const M365_MANAGER_UPN: &str = "megan.manager@contoso.example";
pub const M365_LEAVER_UPN: &str = "lee.leaver@contoso.example";
pub const M365_COLLEAGUE_UPN: &str = "cora.colleague@contoso.example";
pub const M365_SYNCED_LEAVER_UPN: &str = "sam.synced@contoso.example";
/// The synced leaver's AD account: `sAMAccountName`, distinguished name and `ImmutableId`
/// (the source anchor: the base64 of a GUID, as Entra Connect sets it).
pub const M365_SYNCED_LEAVER_SAM: &str = "sam.synced";
pub const M365_SYNCED_LEAVER_DN: &str = "CN=Sam Synced,OU=Staff,DC=contoso,DC=local";
pub const M365_SYNCED_LEAVER_IMMUTABLE_ID: &str = "q83vASNFZ4mrze8BI0VniQ==";

pub const M365_GROUP_UNIFIED: &str = "00000002-0000-4000-8000-000000000001";
pub const M365_GROUP_SECURITY: &str = "00000002-0000-4000-8000-000000000002";
pub const M365_GROUP_DYNAMIC: &str = "00000002-0000-4000-8000-000000000003";
pub const M365_GROUP_SYNCED: &str = "00000002-0000-4000-8000-000000000004";
pub const M365_GROUP_DISTRIBUTION: &str = "00000002-0000-4000-8000-000000000005";
pub const M365_GROUP_MAIL_SECURITY: &str = "00000002-0000-4000-8000-000000000006";
pub const M365_GROUP_LICENSING: &str = "00000002-0000-4000-8000-000000000007";
pub const M365_GROUP_SOLE_OWNER: &str = "00000002-0000-4000-8000-000000000008";
pub const M365_GROUP_SYNCED_DISTRIBUTION: &str = "00000002-0000-4000-8000-000000000009";

/// Microsoft 365 E3 (`ENTERPRISEPACK`), assigned directly to the leaver.
pub const M365_SKU_E3: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
/// Enterprise Mobility + Security E3 (`EMS`), assigned by [`M365_GROUP_LICENSING`].
pub const M365_SKU_EMS: &str = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e";

/// The leaver's Intune laptop and phone, and the colleague's laptop.
pub const M365_LEAVER_LAPTOP: &str = "00000003-0000-4000-8000-000000000001";
pub const M365_LEAVER_PHONE: &str = "00000003-0000-4000-8000-000000000002";
pub const M365_COLLEAGUE_LAPTOP: &str = "00000003-0000-4000-8000-000000000003";
/// The leaver's Exchange ActiveSync partnership.
pub const M365_LEAVER_MOBILE_DEVICE_GUID: &str = "00000004-0000-4000-8000-000000000001";

/// A GUID-shaped id: `kind` (1 user, 2 group, 3 Intune device, 4 mobile device) and a number.
pub(crate) fn guid(kind: u32, n: u64) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn user(id: &str, upn: &str, name: &str) -> User {
    User {
        id: id.to_string(),
        user_principal_name: upn.to_string(),
        display_name: name.to_string(),
        mail: Some(upn.to_string()),
        job_title: Some("Staff".to_string()),
        account_enabled: true,
        ..User::default()
    }
}

/// A group of `kind`: "security", "unified", "dynamic", "synced", "distribution",
/// "mailsecurity" or "synced-distribution".
fn group(id: &str, name: &str, kind: &str, members: &[&str], owners: &[&str]) -> Group {
    let mail = (!matches!(kind, "security" | "dynamic" | "synced"))
        .then(|| format!("{}@contoso.example", name.to_lowercase().replace(' ', ".").replace('\'', "")));
    Group {
        id: id.to_string(),
        display_name: name.to_string(),
        mail_enabled: mail.is_some(),
        mail,
        group_types: match kind {
            "unified" => vec!["Unified".to_string()],
            "dynamic" => vec!["DynamicMembership".to_string()],
            _ => Vec::new(),
        },
        security_enabled: !matches!(kind, "unified" | "distribution" | "synced-distribution"),
        on_premises_sync_enabled: kind.starts_with("synced"),
        membership_rule: (kind == "dynamic").then(|| "user.accountEnabled -eq true".to_string()),
        members: members.iter().map(|m| m.to_string()).collect(),
        owners: owners.iter().map(|m| m.to_string()).collect(),
        assigned_licenses: Vec::new(),
    }
}

fn mailbox(user_id: &str, devices: Vec<MobileDevice>) -> Mailbox {
    Mailbox { user_id: user_id.to_string(), mobile_devices: devices, ..Mailbox::default() }
}

fn managed(id: &str, user_id: &str, name: &str, os: &str) -> (String, ManagedDevice) {
    let device = ManagedDevice {
        id: id.to_string(),
        user_id: user_id.to_string(),
        device_name: name.to_string(),
        operating_system: os.to_string(),
        management_state: "managed".to_string(),
    };
    (id.to_string(), device)
}

fn phone(guid: &str, name: &str) -> MobileDevice {
    MobileDevice {
        guid: guid.to_string(),
        name: name.to_string(),
        device_model: "iPhone".to_string(),
        device_os: "iOS 17.4".to_string(),
    }
}

fn default_tenant() -> Tenant {
    let (lee, cora, megan, sam) = (M365_LEAVER_ID, M365_COLLEAGUE_ID, M365_MANAGER_ID, M365_SYNCED_LEAVER_ID);
    let mut leaver = user(lee, M365_LEAVER_UPN, "Lee Leaver");
    leaver.employee_id = Some("E-1002".to_string());
    leaver.manager_id = Some(megan.to_string());
    leaver.direct_licenses = vec![M365_SKU_E3.to_string()];
    let mut synced = user(sam, M365_SYNCED_LEAVER_UPN, "Sam Synced");
    synced.employee_id = Some("E-1004".to_string());
    synced.manager_id = Some(megan.to_string());
    synced.on_premises_sync_enabled = true;
    synced.on_premises_sam_account_name = Some(M365_SYNCED_LEAVER_SAM.to_string());
    synced.on_premises_distinguished_name = Some(M365_SYNCED_LEAVER_DN.to_string());
    synced.on_premises_immutable_id = Some(M365_SYNCED_LEAVER_IMMUTABLE_ID.to_string());
    synced.direct_licenses = vec![M365_SKU_E3.to_string()];
    let users = [
        user(megan, M365_MANAGER_UPN, "Megan Manager"),
        leaver,
        user(cora, M365_COLLEAGUE_UPN, "Cora Colleague"),
        synced,
    ];
    let mut licensing = group(M365_GROUP_LICENSING, "Licensing EMS", "security", &[lee, sam], &[]);
    licensing.assigned_licenses = vec![M365_SKU_EMS.to_string()];
    let groups = [
        group(M365_GROUP_UNIFIED, "Project Falcon", "unified", &[lee, cora], &[lee, cora]),
        group(M365_GROUP_SECURITY, "Finance Team", "security", &[lee, sam], &[cora]),
        group(M365_GROUP_DYNAMIC, "All Staff", "dynamic", &[lee, cora, megan, sam], &[]),
        group(M365_GROUP_SYNCED, "HQ Printers", "synced", &[lee, sam], &[]),
        group(M365_GROUP_DISTRIBUTION, "Sales", "distribution", &[lee, cora], &[megan]),
        group(M365_GROUP_MAIL_SECURITY, "Finance Approvers", "mailsecurity", &[lee], &[megan]),
        licensing,
        group(M365_GROUP_SOLE_OWNER, "Lee's Team", "unified", &[lee, cora], &[lee]),
        group(M365_GROUP_SYNCED_DISTRIBUTION, "HQ Announcements", "synced-distribution", &[lee, sam], &[]),
    ];
    let mut synced_mailbox = mailbox(sam, vec![phone("00000004-0000-4000-8000-000000000002", "SamPhone")]);
    synced_mailbox.forwarding_address = None;
    Tenant {
        id: M365_TENANT_ID.to_string(),
        domain: M365_TENANT_DOMAIN.to_string(),
        consented: true,
        users: users.into_iter().map(|u| (u.id.clone(), u)).collect(),
        groups: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
        skus: vec![
            Sku { sku_id: M365_SKU_E3.to_string(), sku_part_number: "ENTERPRISEPACK".to_string(), enabled_units: 25 },
            Sku { sku_id: M365_SKU_EMS.to_string(), sku_part_number: "EMS".to_string(), enabled_units: 25 },
        ],
        mailboxes: [
            (megan.to_string(), mailbox(megan, Vec::new())),
            (lee.to_string(), mailbox(lee, vec![phone(M365_LEAVER_MOBILE_DEVICE_GUID, "LeePhone")])),
            (cora.to_string(), mailbox(cora, Vec::new())),
            (sam.to_string(), synced_mailbox),
        ]
        .into_iter()
        .collect(),
        managed_devices: [
            managed(M365_LEAVER_LAPTOP, lee, "LEE-LAPTOP", "Windows"),
            managed(M365_LEAVER_PHONE, lee, "Lee's iPhone", "iOS"),
            managed(M365_COLLEAGUE_LAPTOP, cora, "CORA-LAPTOP", "Windows"),
        ]
        .into_iter()
        .collect(),
    }
}

fn small_tenant(id: &str, domain: &str, consented: bool) -> Tenant {
    let other = user(M365_OTHER_USER_ID, &format!("lee.leaver@{domain}"), "Lee Leaver");
    Tenant {
        id: id.to_string(),
        domain: domain.to_string(),
        consented,
        users: [(other.id.clone(), other)].into_iter().collect(),
        mailboxes: [(M365_OTHER_USER_ID.to_string(), mailbox(M365_OTHER_USER_ID, Vec::new()))].into_iter().collect(),
        ..Tenant::default()
    }
}

pub(crate) fn seed_default(state: &mut State) {
    state.next_id = 0x1000;
    for tenant in [
        default_tenant(),
        small_tenant(M365_OTHER_TENANT_ID, M365_OTHER_TENANT_DOMAIN, true),
        small_tenant(M365_UNCONSENTED_TENANT_ID, "northwind.example", false),
    ] {
        state.tenants.insert(tenant.id.clone(), tenant);
    }
}

/// The kinds a bulk leaver's memberships cycle through.
const BULK_KINDS: [&str; 6] = ["security", "unified", "dynamic", "synced", "distribution", "mailsecurity"];

fn add_leaver(state: &mut State, tenant_id: &str, local_part: &str, memberships: usize) -> Option<String> {
    let user_id = state.new_id(1);
    let mut group_ids = Vec::with_capacity(memberships);
    for _ in 0..memberships {
        group_ids.push(state.new_id(2));
    }
    let device_guid = state.new_id(4);
    let tenant = state.tenants.get_mut(tenant_id)?;
    let upn = format!("{local_part}@{}", tenant.domain);
    let mut leaver = user(&user_id, &upn, local_part);
    leaver.manager_id = Some(M365_MANAGER_ID.to_string()).filter(|m| tenant.users.contains_key(m));
    leaver.employee_id = Some(format!("B-{}", &user_id[user_id.len() - 6..]));
    leaver.direct_licenses = tenant.skus.first().map(|s| s.sku_id.clone()).into_iter().collect();
    for (n, group_id) in group_ids.iter().enumerate() {
        let kind = BULK_KINDS[n % BULK_KINDS.len()];
        // Every 25th Microsoft 365 group has the leaver as its only owner.
        let owners: &[&str] = if kind == "unified" && n % 25 == 1 { &[&user_id] } else { &[] };
        let g = group(group_id, &format!("{local_part} group {n}"), kind, &[&user_id], owners);
        tenant.groups.insert(group_id.clone(), g);
    }
    tenant.mailboxes.insert(user_id.clone(), mailbox(&user_id, vec![phone(&device_guid, "BulkPhone")]));
    tenant.users.insert(user_id.clone(), leaver);
    Some(user_id)
}

impl M365Sim {
    /// Adds a cloud-only leaver `{local_part}@{domain}` to `tenant` with a mailbox, a mobile
    /// device, a direct licence and `memberships` groups cycling through security, Microsoft
    /// 365, dynamic, synced, distribution and mail-enabled security (every 25th Microsoft 365
    /// group solely owned by the leaver). Returns the leaver's id; `None` for an unknown tenant.
    pub fn add_leaver_with_memberships(&self, tenant: &str, local_part: &str, memberships: usize) -> Option<String> {
        self.with_tenant(tenant, |state, id| add_leaver(state, id, local_part, memberships)).flatten()
    }

    /// `count` bench leavers (`bench.leaver.{n}`), each with `memberships_each` groups.
    pub fn add_bench_leavers(&self, tenant: &str, count: usize, memberships_each: usize) -> Vec<String> {
        (0..count)
            .filter_map(|n| self.add_leaver_with_memberships(tenant, &format!("bench.leaver.{n}"), memberships_each))
            .collect()
    }

    /// Ids of the fixture's users of a tenant, sorted.
    pub fn user_ids(&self, tenant: &str) -> BTreeSet<String> {
        self.tenant(tenant).map(|t| t.users.keys().cloned().collect()).unwrap_or_default()
    }
}
