//! The client-offboarding chain in-process against the ConnectWise sandbox, through the
//! same step events the state machine sends: the fixture the chain and the evidence tests
//! share (tests/integration/chain.rs, tests/integration/evidence.rs).

use offramp::chain::{ChainStep, ClientOffboardingReport, ClientOffboardingRequest, InProcessConsent, run_chain};
use offramp::config::ConfigSource;
use offramp::domain::GLOBAL_SCOPE;
use offramp::entry::{Function, FunctionServices, InProcessSteps, chain_deps};
use offramp::workflows::org_settings::CHAIN_RECIPIENTS;
use offramp_sandbox::{Sandbox, SandboxConfig};

use crate::connectwise::source;

pub struct Chain {
    pub sandbox: Sandbox,
    pub services: FunctionServices,
    pub dir: tempfile::TempDir,
}

impl Chain {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The chain with these settings added to the sandbox's environment.
    pub async fn start_with(settings: &[(&str, &str)]) -> Self {
        let sandbox =
            Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut source: ConfigSource = source(&sandbox, &dir.path().join("audit.sqlite"));
        for (key, value) in settings {
            source.set(*key, *value);
        }
        source.set("OFFRAMP_NOTIFIER", "webhook");
        source.set("OFFRAMP_WEBHOOK_URL", sandbox.webhook_url());
        source.set("ITGLUE_URL", sandbox.itglue_url());
        source.set("ITGLUE_API_KEY", offramp_sandbox::ITGLUE_API_KEY);
        source.set("OFFRAMP_ITGLUE_POLL_SECONDS", "1");
        let services = FunctionServices::build(Function::Orchestrator, &source).await.expect("services");
        let chain = Self { sandbox, services, dir };
        chain.set_global(CHAIN_RECIPIENTS, "ops@msp.example").await;
        chain
    }

    pub fn workflows(&self) -> &offramp::app::Services {
        match &self.services {
            FunctionServices::Workflows(services) => services,
            _ => panic!("the chain's services without Microsoft 365 are the workflows'"),
        }
    }

    pub async fn set_global(&self, key: &str, value: &str) {
        put_setting(&self.services, GLOBAL_SCOPE, key, value).await;
    }

    pub async fn run(&self, request: ClientOffboardingRequest, consent: &InProcessConsent) -> ClientOffboardingReport {
        let steps = InProcessSteps { services: &self.services, invoked_by: "test".into() };
        let deps = chain_deps(&self.services, &steps, None).expect("deps");
        run_chain(&deps, request, consent).await
    }

    pub fn active_contacts(&self, company: i64) -> usize {
        let psa = self.sandbox.psa("connectwise");
        psa.contact_ids_of(company).into_iter().filter(|id| psa.contact_is_active(*id) == Some(true)).count()
    }

    pub fn active_configs(&self, company: i64) -> usize {
        let psa = self.sandbox.psa("connectwise");
        psa.configuration_ids_of(company)
            .into_iter()
            .filter(|id| psa.configuration_is_active(*id) == Some(true))
            .count()
    }

    /// Contact and configuration update attempts that reached the simulator for `company`.
    pub fn updates(&self, company: i64) -> usize {
        let psa = self.sandbox.psa("connectwise");
        let contacts: usize = psa.contact_ids_of(company).into_iter().map(|id| psa.contact_update_count(id)).sum();
        let configs: usize = psa.configuration_ids_of(company).into_iter().map(|id| psa.update_count(id)).sum();
        contacts + configs
    }
}

/// The orchestrator's services with Microsoft 365 configured as well (a deployment with a
/// tenant): the sandbox's ConnectWise, Entra, Graph, Exchange Online, IT Glue and
/// notification webhook, and a SQLite trail at `audit_db`; `settings` added last.
pub async fn services_with_m365(
    sandbox: &Sandbox,
    audit_db: &std::path::Path,
    settings: &[(&str, &str)],
) -> FunctionServices {
    let mut source = source(sandbox, audit_db);
    for (key, value) in [
        ("MS_LOGIN_URL", sandbox.entra_url()),
        ("GRAPH_URL", format!("{}/graph", sandbox.base_url())),
        ("EXO_URL", sandbox.exchange_url()),
        ("MS_CLIENT_ID", offramp_sandbox::GRAPH_CLIENT_ID.to_string()),
        ("MS_CLIENT_SECRET", offramp_sandbox::GRAPH_CLIENT_SECRET.to_string()),
        ("ITGLUE_URL", sandbox.itglue_url()),
        ("ITGLUE_API_KEY", offramp_sandbox::ITGLUE_API_KEY.to_string()),
        ("OFFRAMP_ITGLUE_POLL_SECONDS", "1".to_string()),
        ("OFFRAMP_NOTIFIER", "webhook".to_string()),
        ("OFFRAMP_WEBHOOK_URL", sandbox.webhook_url()),
    ] {
        source.set(key, value);
    }
    for (key, value) in settings {
        source.set(*key, *value);
    }
    FunctionServices::build(Function::Orchestrator, &source).await.expect("services")
}

/// Records one organization setting (`scope`: a client id or [`GLOBAL_SCOPE`]) in the
/// services' settings store.
pub async fn put_setting(services: &FunctionServices, scope: &str, key: &str, value: &str) {
    let store = match services {
        FunctionServices::Workflows(services) => &services.org_settings,
        FunctionServices::UserOffboarding(user) => &user.services.org_settings,
        _ => panic!("the chain's services"),
    };
    let record = crate::audit_conformance::setting_record("connectwise", scope, key, Some(value));
    store.put_setting(&record).await.unwrap_or_else(|e| panic!("setting {key}: {e}"));
}

pub fn request(client_id: &str, steps: &[ChainStep], dry_run: bool) -> ClientOffboardingRequest {
    ClientOffboardingRequest {
        client_id: Some(client_id.into()),
        steps: Some(steps.to_vec()),
        dry_run,
        reason: Some("Contract ended".into()),
        initiated_by: Some("tech@msp.example".into()),
        ..Default::default()
    }
}
