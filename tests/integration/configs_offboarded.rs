//! Safe by default (workflow 000): a direct configuration deactivation refuses a client that
//! does not meet the configured offboarded criteria — the sweep's — unless the request says
//! `allow_active_client`, which is recorded; with no criterion configured the refusal says
//! how to configure one; the request's `offboarded_statuses` cannot widen the criteria; and
//! a client offboarded by status that still has a current contract gets a warning in its
//! plan. On all three PSAs, counted in the sandbox.

use offramp::domain::{OffboardedCriteria, OperationEventKind};
use offramp::error::ErrorCode;
use offramp::ports::AuditStore;
use offramp::workflows::deactivate_configs::{DeactivateConfigsRequest, deactivate_configs};
use offramp_sandbox::{Sandbox, SandboxConfig};
use offramp_tests::psa::{ALL, PsaHarness};

/// Fabrikam Legal: active on every PSA (ConnectWise status Active), five active configurations.
const ACTIVE_CLIENT: &str = "100";
/// Litware Inc: offboarded, its only contract ended.
const ENDED_CLIENT: &str = "410";
/// LITWARE INC: offboarded, yet its contract runs another year.
const RUNNING_CONTRACT_CLIENT: &str = "411";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.expect("sandbox")
}

fn request(client_id: &str) -> DeactivateConfigsRequest {
    DeactivateConfigsRequest {
        client_id: Some(client_id.into()),
        initiated_by: Some("tech@msp.example".into()),
        reason: Some("contract ended".into()),
        ..DeactivateConfigsRequest::default()
    }
}

/// An active client is refused with nothing changed and nothing recorded; the request's own
/// `offboarded_statuses` naming its status does not let it through; `allow_active_client`
/// does, and the trail says so in the header and in `started`.
#[tokio::test]
async fn an_active_client_is_refused_unless_the_request_allows_it_on_every_psa() {
    for kind in ALL {
        let sandbox = sandbox().await;
        let h = PsaHarness::new(&sandbox, kind);
        let refused = deactivate_configs(&h.deps(), request(ACTIVE_CLIENT)).await;
        assert_eq!(
            refused.errors.first().map(|e| e.code),
            Some(ErrorCode::ClientNotOffboarded),
            "{kind}: {:?}",
            refused.errors
        );
        assert!(refused.errors[0].message.contains("allow_active_client"), "{kind}: {}", refused.errors[0].message);
        assert_eq!(refused.operation_id, None, "{kind}: refused before anything was recorded");
        let widened =
            DeactivateConfigsRequest { offboarded_statuses: Some(vec!["Active".into()]), ..request(ACTIVE_CLIENT) };
        let refused = deactivate_configs(&h.deps(), widened).await;
        assert_eq!(
            refused.errors[0].code,
            ErrorCode::ClientNotOffboarded,
            "{kind}: a request cannot widen the criteria"
        );
        assert_eq!(sandbox.stats().patches(), 0, "{kind}: nothing changed");

        let allowed = deactivate_configs(
            &h.deps(),
            DeactivateConfigsRequest { allow_active_client: true, ..request(ACTIVE_CLIENT) },
        )
        .await;
        assert!(allowed.success, "{kind}: {:?}", allowed.errors);
        assert_eq!(allowed.statistics.configs_deactivated, 5, "{kind}");
        assert_eq!(sandbox.stats().patches(), 5, "{kind}: counted in the sandbox");
        assert!(allowed.warnings.iter().any(|w| w.contains("allow_active_client")), "{kind}: {:?}", allowed.warnings);
        let detail = h.audit.operation(allowed.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
        let recorded = &detail.operation.input["offboarded"];
        assert_eq!(
            (recorded["allow_active_client"].as_bool(), recorded["meets_criteria"].as_bool()),
            (Some(true), Some(false)),
            "{kind}: {recorded}"
        );
        let started = detail.events.iter().find(|e| e.kind == OperationEventKind::Started).expect("started");
        assert_eq!(started.detail["offboarded"]["allow_active_client"], true, "{kind}: {}", started.detail);
    }
}

/// With no criterion configured, every client is refused — an offboarded one too — and the
/// message says which settings configure one.
#[tokio::test]
async fn with_no_criterion_configured_the_refusal_says_how_to_configure_one() {
    let sandbox = sandbox().await;
    for kind in ALL {
        let h = PsaHarness::new(&sandbox, kind);
        let mut deps = h.deps();
        deps.options.offboarded = OffboardedCriteria::default();
        let refused = deactivate_configs(&deps, request(ENDED_CLIENT)).await;
        assert_eq!(
            refused.errors.first().map(|e| e.code),
            Some(ErrorCode::ClientNotOffboarded),
            "{kind}: {:?}",
            refused.errors
        );
        let message = &refused.errors[0].message;
        for setting in ["OFFRAMP_OFFBOARDED_STATUSES", "OFFRAMP_OFFBOARDED_INACTIVE", "allow_active_client", "README"] {
            assert!(message.contains(setting), "{kind}: {setting} in {message}");
        }
    }
    assert_eq!(sandbox.stats().patches(), 0);
}

/// A client that meets the criteria by status or flag but whose contract still runs is
/// planned with a warning that says so; one whose contract ended is not. Under the contract
/// criterion alone, the running contract keeps the client out.
#[tokio::test]
async fn a_running_contract_is_a_warning_in_the_plan_on_every_psa() {
    let sandbox = sandbox().await;
    for kind in ALL {
        let h = PsaHarness::new(&sandbox, kind);
        let plan = |client: &str| DeactivateConfigsRequest { dry_run: true, ..request(client) };
        let running = deactivate_configs(&h.deps(), plan(RUNNING_CONTRACT_CLIENT)).await;
        assert!(running.success, "{kind}: {:?}", running.errors);
        let warning = running.warnings.iter().find(|w| w.contains("current contract")).cloned();
        assert!(
            warning.as_deref().is_some_and(|w| w.contains("1 current contract(s) of 1")),
            "{kind}: {:?}",
            running.warnings
        );
        let ended = deactivate_configs(&h.deps(), plan(ENDED_CLIENT)).await;
        assert!(
            ended.success && !ended.warnings.iter().any(|w| w.contains("contract")),
            "{kind}: {:?}",
            ended.warnings
        );

        let mut by_contract = h.deps();
        by_contract.options.offboarded = OffboardedCriteria { contract_ended: true, ..Default::default() };
        let kept_out = deactivate_configs(&by_contract, plan(RUNNING_CONTRACT_CLIENT)).await;
        assert_eq!(
            kept_out.errors.first().map(|e| e.code),
            Some(ErrorCode::ClientNotOffboarded),
            "{kind}: {:?}",
            kept_out.errors
        );
        let let_in = deactivate_configs(&by_contract, plan(ENDED_CLIENT)).await;
        assert!(let_in.success, "{kind}: every contract ended: {:?}", let_in.errors);
    }
    assert_eq!(sandbox.stats().patches(), 0, "plans only");
}
