//! Every simulated PSA renders the same vendor-neutral fixture.

use offramp_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

#[tokio::test]
async fn every_vendor_renders_the_same_configurations() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 3, ..SandboxConfig::default() }).await.unwrap();
    for kind in ["connectwise", "autotask", "halo"] {
        let psa = sb.psa(kind);
        assert_eq!(psa.kind(), kind);
        assert_eq!(psa.configuration_ids_of(270), (27001..=27005).collect::<Vec<_>>(), "{kind}");
        let active: Vec<bool> = (27001..=27005).map(|id| psa.configuration_is_active(id).unwrap()).collect();
        assert_eq!(active, [true, true, true, false, false], "{kind}");
        assert_eq!(psa.configuration_ids_of(250).len(), 12, "{kind}");
        assert_eq!(psa.configuration_ids_of(300), [300001, 300002, 300003], "{kind}");
        assert!(psa.configuration_ids_of(260).is_empty(), "{kind}");
        assert_eq!(psa.configuration_is_active(25009), Some(true), "{kind}: On Order is in use");
        assert_eq!(psa.configuration_is_active(1), None, "{kind}");

        psa.set_configuration_active(27001, false);
        assert_eq!(psa.configuration_is_active(27001), Some(false), "{kind}");
        psa.set_configuration_active(27001, true);
        assert_eq!(psa.update_count(27001), 0, "{kind}: test-side changes are not updates");
    }
    assert_eq!(sb.connectwise().company(270).unwrap()["status"]["name"], "Offboarded");
    assert_eq!(sb.connectwise().company(300).unwrap()["status"]["name"], "Inactive");
    assert_eq!(sb.autotask().company(300).unwrap()["isActive"], true);
    assert_eq!(sb.halo().client(270).unwrap()["inactive"], true);
}

#[tokio::test]
#[should_panic(expected = "unknown PSA kind")]
async fn unknown_kinds_panic() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sb.psa("syncro");
}

#[tokio::test]
async fn contracts_added_at_run_time_reach_every_vendor() {
    let sb = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sb.add_contract(300, 3001, Some("2000-01-31"), false);
    sb.add_contract(300, 3002, None, false);
    let cw = sb.connectwise().agreement(3001).unwrap();
    assert_eq!(
        (cw["endDate"].clone(), cw["agreementStatus"].clone()),
        (json!("2000-01-31T00:00:00Z"), json!("Expired"))
    );
    assert_eq!(sb.connectwise().agreement(3002).unwrap()["agreementStatus"], "Active");
    let at = sb.autotask().contract(3002).unwrap();
    assert_eq!((at["endDate"].clone(), at["status"].clone()), (json!("2099-12-31T00:00:00"), json!(1)));
    let halo = sb.halo().contract(3001).unwrap();
    assert_eq!((halo["end_date"].clone(), halo["active"].clone()), (json!("2000-01-31T00:00:00"), json!(false)));
    assert_eq!(sb.halo().contract(3002).unwrap()["active"], true);
    assert_eq!(sb.halo().contract(3002).unwrap()["client_name"], "Northwind Logistics");
}
