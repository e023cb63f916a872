//! The Samba AD DC of a test run, and one OU of users and groups per test.
//!
//! Tests run through `scripts/with-samba.sh` (in `make test` after `scripts/with-moto.sh`),
//! which starts one DC per run on 127.0.0.1:389/636 and exports its address, CA and
//! administrator as `OFFRAMP_TEST_AD_*`. Every test works in an OU of its own
//! ([`AdFixture::new`]), so tests run in parallel against the one DC. The fixture writes
//! with `ldap3` directly, as the administrator, over a connection of its own: what a test
//! reads back through [`AdFixture::read`] never went through the adapter under test.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use offramp::adapters::ldap::AdSettings;
use offramp::secret::SecretString;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub const URL_VAR: &str = "OFFRAMP_TEST_AD_URL";
pub const CA_VAR: &str = "OFFRAMP_TEST_AD_CA";
pub const OTHER_CA_VAR: &str = "OFFRAMP_TEST_AD_OTHER_CA";
pub const BIND_DN_VAR: &str = "OFFRAMP_TEST_AD_BIND_DN";
pub const BIND_PASSWORD_VAR: &str = "OFFRAMP_TEST_AD_BIND_PASSWORD";
pub const BASE_DN_VAR: &str = "OFFRAMP_TEST_AD_BASE_DN";

/// The built-in group every fixture's leaver joins (shared by all tests: only ever added to).
pub const BUILTIN_GROUP: &str = "CN=Remote Desktop Users,CN=Builtin,DC=test,DC=local";

/// A variable `scripts/with-samba.sh` exports.
///
/// # Panics
/// When the tests were not started through `scripts/with-samba.sh`.
pub fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need the Samba AD DC of scripts/with-samba.sh; run through it or \
             make test (e.g. scripts/with-moto.sh scripts/with-samba.sh cargo nextest run --workspace \
             -E 'test(/^onprem_ldap::/)')"
        ),
    }
}

/// The adapter's settings for the test DC: LDAPS, the run's CA, the administrator.
pub fn ad_settings() -> AdSettings {
    let mut settings =
        AdSettings::new(var(URL_VAR), var(BIND_DN_VAR), SecretString::new(var(BIND_PASSWORD_VAR)), var(BASE_DN_VAR))
            .expect("test AD settings");
    settings.ca_file = Some(PathBuf::from(var(CA_VAR)));
    settings.timeout = Duration::from_secs(20);
    settings
}

/// A CA that did not sign the DC's certificate.
pub fn other_ca() -> PathBuf {
    PathBuf::from(var(OTHER_CA_VAR))
}

/// A TLS configuration trusting only the run's CA (the tests' own, not the adapter's).
fn tls() -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(var(CA_VAR)).expect("the test DC's CA");
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        roots.add(certificate.expect("a PEM certificate")).expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A new LDAPS connection bound as `dn`; the bind's result code (0: the password works).
pub async fn bind_as(dn: &str, password: &str) -> (u32, Ldap) {
    let settings = LdapConnSettings::new().set_config(tls()).set_conn_timeout(Duration::from_secs(10));
    let (driver, mut ldap) = LdapConnAsync::with_settings(settings, &var(URL_VAR)).await.expect("LDAPS connection");
    ldap3::drive!(driver);
    let result = ldap.simple_bind(dn, password).await.expect("bind answered");
    (result.rc, ldap)
}

/// The administrator's own connection.
pub async fn admin() -> Ldap {
    let (rc, ldap) = bind_as(&var(BIND_DN_VAR), &var(BIND_PASSWORD_VAR)).await;
    assert_eq!(rc, 0, "the administrator's bind");
    ldap
}

/// A user the fixture made, with the password it set.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub dn: String,
    pub sam: String,
    pub upn: String,
    pub password: String,
    pub employee_id: String,
    pub mail: String,
}

/// One test's OU: `Staff` (the manager and the leaver), `Disabled Users`, and the groups
/// the leaver is a direct member of.
pub struct AdFixture {
    pub admin: Ldap,
    pub ou: String,
    pub staff: String,
    pub disabled: String,
    pub manager: TestUser,
    pub leaver: TestUser,
    /// A security group, itself a member of `parent_group` (nested).
    pub security_group: String,
    pub parent_group: String,
    pub distribution_group: String,
    /// [`BUILTIN_GROUP`].
    pub builtin_group: String,
}

fn token() -> String {
    // The random tail of a v7 UUID: unique across the run's tests, short enough for a
    // sAMAccountName (20 characters at most).
    uuid::Uuid::now_v7().simple().to_string()[20..].to_string()
}

fn values(items: &[&str]) -> HashSet<Vec<u8>> {
    items.iter().map(|v| v.as_bytes().to_vec()).collect()
}

type Attrs = Vec<(Vec<u8>, HashSet<Vec<u8>>)>;

fn attr(name: &str, items: &[&str]) -> (Vec<u8>, HashSet<Vec<u8>>) {
    (name.as_bytes().to_vec(), values(items))
}

/// `unicodePwd` as AD takes it: quoted, UTF-16LE (written here on purpose, not taken from
/// the adapter).
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

impl AdFixture {
    /// A fresh OU `OU=t-<prefix>-<token>` with everything in it.
    pub async fn new(prefix: &str) -> Self {
        let mut admin = admin().await;
        let base = var(BASE_DN_VAR);
        let ou = format!("OU=t-{prefix}-{},{base}", token());
        let staff = format!("OU=Staff,{ou}");
        let disabled = format!("OU=Disabled Users,{ou}");
        for dn in [&ou, &staff, &disabled] {
            add(&mut admin, dn, vec![attr("objectClass", &["organizationalUnit"])]).await;
        }
        let manager = create_user(&mut admin, &staff, "Mia Manager", None).await;
        let leaver = create_user(&mut admin, &staff, "Lee Leaver", Some(&manager.dn)).await;
        let parent_group = create_group(&mut admin, &ou, "All Staff", "-2147483646", &[]).await;
        let security_group = create_group(&mut admin, &ou, "Sales", "-2147483646", &[&leaver.dn]).await;
        modify_add(&mut admin, &parent_group, "member", &security_group).await;
        // groupType 2: a global distribution group.
        let distribution_group = create_group(&mut admin, &ou, "Newsletter", "2", &[&leaver.dn]).await;
        modify_add(&mut admin, BUILTIN_GROUP, "member", &leaver.dn).await;
        Self {
            admin,
            ou,
            staff,
            disabled,
            manager,
            leaver,
            security_group,
            parent_group,
            distribution_group,
            builtin_group: BUILTIN_GROUP.into(),
        }
    }

    /// `count` more users in `Staff` (each with the manager), created 8 at a time.
    pub async fn create_users(&self, count: usize) -> Vec<TestUser> {
        futures::stream::iter(0..count)
            .map(|i| {
                let (mut admin, staff, manager) = (self.admin.clone(), self.staff.clone(), self.manager.dn.clone());
                async move { Ok::<_, ()>(create_user(&mut admin, &staff, &format!("User {i}"), Some(&manager)).await) }
            })
            .buffered(8)
            .try_collect()
            .await
            .expect("users")
    }

    /// The entry at `dn` as the administrator reads it (`None`: there is none).
    pub async fn read(&self, dn: &str, attrs: &[&str]) -> Option<SearchEntry> {
        let mut admin = self.admin.clone();
        let result = admin.search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec()).await.expect("search answered");
        if result.1.rc == 32 {
            return None;
        }
        let (entries, _) = result.success().expect("read back");
        entries.into_iter().next().map(SearchEntry::construct)
    }

    /// The values of one attribute of `dn` (empty: none, or no such entry).
    pub async fn values(&self, dn: &str, attribute: &str) -> Vec<String> {
        let entry = self.read(dn, &[attribute]).await;
        entry
            .and_then(|e| e.attrs.into_iter().find(|(k, _)| k.eq_ignore_ascii_case(attribute)))
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    pub async fn value(&self, dn: &str, attribute: &str) -> Option<String> {
        self.values(dn, attribute).await.into_iter().next()
    }
}

async fn add(admin: &mut Ldap, dn: &str, attrs: Attrs) {
    admin.add(dn, attrs).await.expect("add answered").success().unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

async fn modify_add(admin: &mut Ldap, dn: &str, attribute: &str, value: &str) {
    let change = ldap3::Mod::Add(attribute.as_bytes().to_vec(), values(&[value]));
    admin
        .modify(dn, vec![change])
        .await
        .expect("modify answered")
        .success()
        .unwrap_or_else(|e| panic!("add {attribute} to {dn}: {e}"));
}

/// An enabled user (userAccountControl 512) with a password, an employee id, a mail address
/// and a UPN `<sam>@test.local`.
async fn create_user(admin: &mut Ldap, parent: &str, name: &str, manager: Option<&str>) -> TestUser {
    let sam = format!("u{}", token());
    let cn = format!("{name} {sam}");
    let dn = format!("CN={cn},{parent}");
    let user = TestUser {
        upn: format!("{sam}@test.local"),
        password: format!("Old!Pass-{}", token()),
        employee_id: format!("E-{}", token()),
        mail: format!("{sam}@test.example"),
        dn,
        sam,
    };
    let mut attrs = vec![
        attr("objectClass", &["top", "person", "organizationalPerson", "user"]),
        attr("cn", &[&cn]),
        attr("sAMAccountName", &[&user.sam]),
        attr("userPrincipalName", &[&user.upn]),
        attr("displayName", &[&cn]),
        attr("mail", &[&user.mail]),
        attr("employeeID", &[&user.employee_id]),
        attr("userAccountControl", &["512"]),
        (b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&user.password)])),
    ];
    if let Some(manager) = manager {
        attrs.push(attr("manager", &[manager]));
    }
    add(admin, &user.dn, attrs).await;
    user
}

async fn create_group(admin: &mut Ldap, parent: &str, name: &str, group_type: &str, members: &[&str]) -> String {
    let sam = format!("g{}", token());
    let dn = format!("CN={name} {sam},{parent}");
    let mut attrs =
        vec![attr("objectClass", &["top", "group"]), attr("sAMAccountName", &[&sam]), attr("groupType", &[group_type])];
    if !members.is_empty() {
        attrs.push(attr("member", members));
    }
    add(admin, &dn, attrs).await;
    dn
}
