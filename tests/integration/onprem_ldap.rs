//! The LDAP adapter (issue 16) against a real Samba AD DC (scripts/with-samba.sh): every
//! change is read back by the administrator over a connection of its own, never through
//! the adapter under test. Each test works in its own OU ([`AdFixture`]).

use std::sync::Arc;

use offramp::adapters::ldap::{AdTransport, LdapDirectory};
use offramp::ports::{ACCOUNT_DISABLED, DirectoryError, OnPremDirectory};
use offramp::secret::SecretString;
use offramp_tests::samba::{AdFixture, BUILTIN_GROUP, ad_settings, bind_as, other_ca};

fn directory() -> LdapDirectory {
    LdapDirectory::new(ad_settings()).expect("LDAP directory")
}

/// Whether `password` binds as `dn` (a new connection each time).
async fn binds(dn: &str, password: &str) -> bool {
    bind_as(dn, password).await.0 == 0
}

#[tokio::test]
async fn onprem_ldap_finds_the_leaver_by_sam_upn_and_dn_with_every_attribute() {
    let fx = AdFixture::new("find").await;
    let dir = directory();
    assert_eq!(dir.domain(), "test.local");
    let lee = dir.find_user(&fx.leaver.sam).await.unwrap().expect("by sAMAccountName");
    assert_eq!(lee.dn, fx.leaver.dn);
    assert_eq!(dir.find_user(&fx.leaver.upn).await.unwrap().expect("by UPN").dn, fx.leaver.dn);
    assert_eq!(dir.find_user(&fx.leaver.dn).await.unwrap().expect("by DN").sam_account_name, fx.leaver.sam);

    assert_eq!(lee.user_principal_name.as_deref(), Some(fx.leaver.upn.as_str()));
    assert_eq!(lee.mail.as_deref(), Some(fx.leaver.mail.as_str()));
    assert_eq!(lee.employee_id.as_deref(), Some(fx.leaver.employee_id.as_str()));
    assert_eq!(lee.manager.as_deref(), Some(fx.manager.dn.as_str()));
    assert_eq!(lee.user_account_control, 512);
    assert!(lee.enabled());
    assert_eq!(lee.primary_group_id, Some(513), "Domain Users, kept out of memberOf");
    assert_eq!(lee.hidden_from_address_lists, None);
    assert_eq!(lee.parent_dn(), fx.staff);
    let mut groups = lee.member_of.clone();
    groups.sort();
    let mut expected = vec![fx.security_group.clone(), fx.distribution_group.clone(), BUILTIN_GROUP.to_string()];
    expected.sort();
    assert_eq!(groups, expected, "direct memberships only (not the nested parent group)");

    // The GUID as the administrator reads it, in registry form.
    let entry = fx.read(&fx.leaver.dn, &["objectGUID"]).await.expect("leaver");
    let raw = &entry.bin_attrs["objectGUID"][0];
    let guid = uuid::Uuid::from_bytes_le(raw.as_slice().try_into().expect("16 bytes"));
    assert_eq!(lee.object_guid, guid.hyphenated().to_string());

    assert_eq!(dir.find_user("nobody-here").await.unwrap(), None);
    assert_eq!(dir.find_user("nobody@test.local").await.unwrap(), None);
    assert_eq!(dir.find_user(&format!("CN=Nobody,{}", fx.staff)).await.unwrap(), None);
    // Filter values are escaped: a wildcard finds nobody instead of everybody.
    assert_eq!(dir.find_user("*").await.unwrap(), None);
    assert_eq!(dir.find_user(&format!("{})(sAMAccountName=*", fx.leaver.sam)).await.unwrap(), None);

    // By mail (an unsynced pair's rule), escaped the same way.
    let by_mail = dir.find_user_by_mail(&fx.leaver.mail.to_uppercase()).await.unwrap().expect("by mail");
    assert_eq!(by_mail.dn, fx.leaver.dn);
    assert_eq!(dir.find_user_by_mail("*").await.unwrap(), None);
    assert_eq!(dir.find_user_by_mail("nobody@test.example").await.unwrap(), None);
}

#[tokio::test]
async fn onprem_ldap_disables_by_user_account_control_and_enables_again() {
    let fx = AdFixture::new("disable").await;
    let dir = directory();
    let lee = dir.find_user(&fx.leaver.sam).await.unwrap().unwrap();
    dir.set_user_account_control(&lee.dn, lee.user_account_control | ACCOUNT_DISABLED).await.unwrap();
    assert_eq!(fx.value(&lee.dn, "userAccountControl").await.as_deref(), Some("514"));
    assert!(!binds(&lee.dn, &fx.leaver.password).await, "a disabled account cannot bind");
    assert!(!dir.find_user(&lee.dn).await.unwrap().unwrap().enabled());

    dir.set_user_account_control(&lee.dn, lee.user_account_control).await.unwrap();
    assert_eq!(fx.value(&lee.dn, "userAccountControl").await.as_deref(), Some("512"));
    assert!(binds(&lee.dn, &fx.leaver.password).await);
}

#[tokio::test]
async fn onprem_ldap_resets_the_password_and_the_old_one_stops_working() {
    let fx = AdFixture::new("password").await;
    let dir = directory();
    assert!(binds(&fx.leaver.dn, &fx.leaver.password).await);
    let new_password = SecretString::new("N3w!Passw0rd-ldap");
    dir.reset_password(&fx.leaver.dn, &new_password).await.unwrap();
    assert!(!binds(&fx.leaver.dn, &fx.leaver.password).await, "the old password is refused");
    assert!(binds(&fx.leaver.dn, new_password.expose()).await, "the new password binds");

    // A password the policy refuses: the DC's code, nothing changed.
    let error = dir.reset_password(&fx.leaver.dn, &SecretString::new("short")).await.unwrap_err();
    assert!(matches!(error, DirectoryError::Refused { status: 19, .. }), "{error:?}");
    assert!(binds(&fx.leaver.dn, new_password.expose()).await);
}

#[tokio::test]
async fn onprem_ldap_clears_and_restores_the_employee_id_and_the_manager() {
    let fx = AdFixture::new("attrs").await;
    let dir = directory();
    let dn = &fx.leaver.dn;
    dir.set_employee_id(dn, None).await.unwrap();
    assert_eq!(fx.value(dn, "employeeID").await, None);
    dir.set_employee_id(dn, None).await.expect("clearing an absent id is done");
    dir.set_employee_id(dn, Some(&fx.leaver.employee_id)).await.unwrap();
    assert_eq!(fx.value(dn, "employeeID").await, Some(fx.leaver.employee_id.clone()));

    dir.set_manager(dn, None).await.unwrap();
    assert_eq!(fx.value(dn, "manager").await, None);
    assert!(!fx.values(&fx.manager.dn, "directReports").await.contains(dn), "the back-link follows");
    dir.set_manager(dn, None).await.expect("clearing an absent manager is done");
    dir.set_manager(dn, Some(&fx.manager.dn)).await.unwrap();
    assert_eq!(fx.value(dn, "manager").await, Some(fx.manager.dn.clone()));
    assert!(fx.values(&fx.manager.dn, "directReports").await.contains(dn));
}

#[tokio::test]
async fn onprem_ldap_removes_a_member_and_adds_it_back() {
    let fx = AdFixture::new("members").await;
    let dir = directory();
    let lee = &fx.leaver.dn;
    for group in [&fx.security_group, &fx.distribution_group, &fx.builtin_group] {
        dir.remove_member(group, lee).await.unwrap_or_else(|e| panic!("{group}: {e}"));
        assert!(!fx.values(group, "member").await.contains(lee), "{group}");
        let error = dir.remove_member(group, lee).await.unwrap_err();
        assert!(matches!(error, DirectoryError::NotFound { .. }), "not a member any more: {error:?}");
    }
    assert!(fx.values(lee, "memberOf").await.is_empty());
    for group in [&fx.security_group, &fx.distribution_group, &fx.builtin_group] {
        dir.add_member(group, lee).await.unwrap();
        dir.add_member(group, lee).await.expect("already a member is done");
        assert!(fx.values(group, "member").await.contains(lee), "{group}");
    }
    // The manager never was a member.
    let error = dir.remove_member(&fx.security_group, &fx.manager.dn).await.unwrap_err();
    assert!(matches!(error, DirectoryError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn onprem_ldap_moves_to_the_disabled_ou_and_back() {
    let fx = AdFixture::new("move").await;
    let dir = directory();
    let lee = dir.find_user(&fx.leaver.sam).await.unwrap().unwrap();
    let moved = dir.move_entry(&lee.dn, &fx.disabled).await.unwrap();
    assert_eq!(moved, format!("{},{}", lee.rdn(), fx.disabled));
    assert!(fx.read(&lee.dn, &["1.1"]).await.is_none(), "gone from Staff");
    assert_eq!(fx.value(&moved, "sAMAccountName").await, Some(fx.leaver.sam.clone()));
    let found = dir.find_user(&fx.leaver.sam).await.unwrap().unwrap();
    assert_eq!((found.dn.as_str(), found.object_guid.as_str()), (moved.as_str(), lee.object_guid.as_str()));
    assert!(fx.values(&fx.security_group, "member").await.contains(&moved), "memberships follow the move");

    let missing = format!("OU=Nowhere,{}", fx.ou);
    assert!(!dir.entry_exists(&missing).await.unwrap());
    let error = dir.move_entry(&moved, &missing).await.unwrap_err();
    assert!(matches!(error, DirectoryError::NotFound { .. }), "{error:?}");

    assert_eq!(dir.move_entry(&moved, &fx.staff).await.unwrap(), lee.dn);
    assert!(fx.read(&lee.dn, &["1.1"]).await.is_some());
}

#[tokio::test]
async fn onprem_ldap_hides_from_the_address_lists_with_the_exchange_schema() {
    let fx = AdFixture::new("gal").await;
    let dir = directory();
    assert!(dir.schema_has_attribute("msExchHideFromAddressLists").await.unwrap());
    assert!(!dir.schema_has_attribute("msExchNoSuchMadeUpAttribute").await.unwrap());
    // Asked again (every offboarding asks), it is answered without an LDAP operation.
    let sent = dir.operations_sent();
    assert!(dir.schema_has_attribute("msexchhidefromaddresslists").await.unwrap());
    assert_eq!(dir.operations_sent(), sent, "the schema's answer is kept");
    dir.set_hidden_from_address_lists(&fx.leaver.dn, true).await.unwrap();
    assert_eq!(fx.value(&fx.leaver.dn, "msExchHideFromAddressLists").await.as_deref(), Some("TRUE"));
    assert_eq!(dir.find_user(&fx.leaver.sam).await.unwrap().unwrap().hidden_from_address_lists, Some(true));
    dir.set_hidden_from_address_lists(&fx.leaver.dn, false).await.unwrap();
    assert_eq!(fx.value(&fx.leaver.dn, "msExchHideFromAddressLists").await.as_deref(), Some("FALSE"));
}

#[tokio::test]
async fn onprem_ldap_reads_groups_and_marks_the_built_in_ones() {
    let fx = AdFixture::new("groups").await;
    let dir = directory();
    let builtin = dir.group(BUILTIN_GROUP).await.unwrap().expect("Remote Desktop Users");
    assert!(builtin.built_in);
    assert_eq!(builtin.name, "Remote Desktop Users");
    let domain_users = dir.group("CN=Domain Users,CN=Users,DC=test,DC=local").await.unwrap().unwrap();
    assert!(domain_users.built_in, "a critical system object");
    let sales = dir.group(&fx.security_group).await.unwrap().expect("the security group");
    assert!(!sales.built_in);
    assert!(sales.name.starts_with('g'), "its sAMAccountName: {}", sales.name);
    assert!(!dir.group(&fx.distribution_group).await.unwrap().unwrap().built_in);
    assert_eq!(dir.group(&format!("CN=Nothing,{}", fx.ou)).await.unwrap(), None);
    assert_eq!(dir.group(&fx.leaver.dn).await.unwrap(), None, "a user is not a group");
    assert!(dir.entry_exists(&fx.disabled).await.unwrap());
}

#[tokio::test]
async fn onprem_ldap_never_sends_a_password_without_tls() {
    let fx = AdFixture::new("plain").await;
    let mut settings = ad_settings();
    settings.url = "ldap://127.0.0.1:389".into();
    settings.transport = AdTransport::PlainTextInsecure;
    let dir = LdapDirectory::new(settings).unwrap();
    let error = dir.reset_password(&fx.leaver.dn, &SecretString::new("N3w!Passw0rd-plain")).await.unwrap_err();
    assert!(matches!(error, DirectoryError::Configuration { .. }), "{error:?}");
    assert_eq!(dir.operations_sent(), 0, "not even a bind was sent");
    assert!(binds(&fx.leaver.dn, &fx.leaver.password).await, "the password is unchanged");
}

#[tokio::test]
async fn onprem_ldap_refuses_a_wrong_bind_password_and_a_certificate_of_another_ca() {
    let mut settings = ad_settings();
    settings.bind_password = SecretString::new("not-the-password");
    let error = LdapDirectory::new(settings).unwrap().find_user("Administrator").await.unwrap_err();
    assert!(matches!(error, DirectoryError::PermissionDenied { .. }), "{error:?}");

    let mut settings = ad_settings();
    settings.ca_file = Some(other_ca());
    let error = LdapDirectory::new(settings).unwrap().find_user("Administrator").await.unwrap_err();
    let DirectoryError::Connection { message } = &error else { panic!("a TLS failure: {error:?}") };
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    // StartTLS on 389 verifies the same way, and works with the right CA.
    let mut settings = ad_settings();
    settings.url = "ldap://127.0.0.1:389".into();
    settings.transport = AdTransport::StartTls;
    let dir = LdapDirectory::new(settings).unwrap();
    assert!(dir.find_user("Administrator").await.unwrap().is_some());
}

/// Concurrent calls share one connection and one bind: N searches are N + 1 operations.
#[tokio::test]
async fn onprem_ldap_multiplexes_concurrent_calls_on_one_bound_connection() {
    let fx = AdFixture::new("many").await;
    let users = fx.create_users(12).await;
    let dir = Arc::new(directory());
    let found = futures::future::join_all(users.iter().map(|u| {
        let dir = dir.clone();
        async move { dir.find_user(&u.sam).await }
    }))
    .await;
    for (user, found) in users.iter().zip(found) {
        assert_eq!(found.unwrap().expect("found").dn, user.dn);
    }
    assert_eq!(dir.operations_sent(), users.len() as u64 + 1, "one bind, one search each");
}

/// Neither the bind password nor a new password appears in the trace log, in any encoding.
#[tokio::test]
async fn onprem_ldap_logs_no_password() {
    use crate::secret_leaks::{Buffer, forms};
    let fx = AdFixture::new("leaks").await;
    let buffer = Buffer::default();
    let subscriber = offramp::logging::capture("trace", offramp::logging::LogFormat::Json, {
        let buffer = buffer.clone();
        move || buffer.clone()
    });
    let _guard = tracing::subscriber::set_default(subscriber);
    let new_password = "N3w!Pa\"ss\\w0rd+/=&";
    let dir = directory();
    dir.reset_password(&fx.leaver.dn, &SecretString::new(new_password)).await.unwrap();
    dir.reset_password(&format!("CN=Nobody,{}", fx.staff), &SecretString::new(new_password)).await.unwrap_err();
    let mut refused = ad_settings();
    refused.bind_password = SecretString::new("Wr0ng\"bind\\pass+/=&");
    LdapDirectory::new(refused).unwrap().find_user("Administrator").await.unwrap_err();
    drop(_guard);

    let log = String::from_utf8_lossy(&buffer.0.lock().unwrap()).to_string();
    assert!(log.contains(&fx.leaver.dn), "the spans name the DN: {log}");
    let bind_password = ad_settings().bind_password.expose().to_string();
    for secret in [new_password, bind_password.as_str(), "Wr0ng\"bind\\pass+/=&"] {
        for form in forms(secret) {
            assert!(!log.contains(&form), "{form} in the log");
        }
    }
}
