//! Wiring Offramp to any of the three PSA simulators, so one scenario runs on all three.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::autotask::{AutotaskClient, AutotaskSettings};
use offramp::adapters::halo::{HaloClient, HaloSettings};
use offramp::config::ConfigSource;
use offramp::domain::PsaKind;
use offramp::http::{BudgetSettings, HttpSettings};
use offramp::ports::{NoProgress, Psa};
use offramp::workflows::deactivate_configs::{ConfigDeactivationOptions, Deps};
use offramp_sandbox::{
    AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT, PsaSim, Sandbox,
};

pub const ALL: [PsaKind; 3] = [PsaKind::ConnectWise, PsaKind::Autotask, PsaKind::Halo];

/// The parity client: 27001–27003 active, 27004 inactive, 27005 archived (ConnectWise
/// "Disposed", Autotask CI type 9 "Retired", HaloPSA asset status 4 "Disposed").
pub const PARITY_CLIENT: &str = "270";

/// Deactivate every configuration of the large client (company 300, seeded on every PSA
/// with `SandboxConfig::large_client_configs`). It is not offboarded and has more than the
/// blast-radius guard allows: tests of limits and rollback throughput pass both overrides.
pub fn large_client_request() -> offramp::workflows::deactivate_configs::DeactivateConfigsRequest {
    offramp::workflows::deactivate_configs::DeactivateConfigsRequest {
        client_id: Some("300".into()),
        allow_active_client: true,
        override_blast_radius: true,
        ..Default::default()
    }
}
/// Autotask `configurationItemType` and HaloPSA `status_id` the sandbox uses for archived items.
pub const AT_ARCHIVED_CI_TYPE: i64 = 9;
pub const HALO_ARCHIVED_STATUS: i64 = 4;

pub fn autotask_settings(sandbox: &Sandbox) -> AutotaskSettings {
    AutotaskSettings {
        // No URL: the zone is looked up by user name, as in production.
        url: None,
        zone_lookup_url: sandbox.autotask_zone_lookup_url(),
        username: AT_USERNAME.into(),
        secret: AT_SECRET.into(),
        integration_code: AT_INTEGRATION_CODE.into(),
        archived_ci_types: vec![AT_ARCHIVED_CI_TYPE],
        tickets: Default::default(),
        budget_reserve: 1000,
    }
}

pub fn halo_settings(sandbox: &Sandbox) -> HaloSettings {
    HaloSettings {
        url: sandbox.halo_url(),
        auth_url: None,
        tenant: Some(HALO_TENANT.into()),
        client_id: HALO_CLIENT_ID.into(),
        client_secret: HALO_CLIENT_SECRET.into(),
        scope: "all".into(),
        archived_status_ids: vec![HALO_ARCHIVED_STATUS],
        update_batch: 50,
        note_outcome_id: 7,
        closed_ticket_status_id: 9,
        new_ticket_type_id: 1,
    }
}

/// Test HTTP settings for `kind`: the PSA's own limits (Autotask 3 per endpoint and an
/// hourly budget, HaloPSA a five-minute budget), short backoffs.
pub fn http_settings(kind: PsaKind) -> HttpSettings {
    let mut http = crate::connectwise::http_settings();
    if kind != PsaKind::ConnectWise {
        // No per-second pacing on Autotask and HaloPSA: their limits are windows.
        http.rate_limit_per_sec = None;
    }
    match kind {
        PsaKind::ConnectWise => {}
        PsaKind::Autotask => {
            http.max_concurrency_per_endpoint = Some(3);
            http.budget =
                Some(BudgetSettings { limit: 9_000, window: Duration::from_secs(3600), max_wait: Duration::ZERO });
        }
        PsaKind::Halo => {
            http.budget = Some(BudgetSettings {
                limit: 300,
                window: Duration::from_secs(300),
                max_wait: Duration::from_secs(300),
            });
        }
    }
    http
}

pub fn client_with(sandbox: &Sandbox, kind: PsaKind, http: HttpSettings) -> Box<dyn Psa> {
    match kind {
        PsaKind::ConnectWise => Box::new(
            offramp::adapters::connectwise::ConnectWiseClient::new(crate::connectwise::settings(sandbox), http)
                .expect("client"),
        ),
        PsaKind::Autotask => Box::new(AutotaskClient::new(autotask_settings(sandbox), http).expect("client")),
        PsaKind::Halo => Box::new(HaloClient::new(halo_settings(sandbox), http).expect("client")),
    }
}

pub fn client(sandbox: &Sandbox, kind: PsaKind) -> Box<dyn Psa> {
    client_with(sandbox, kind, http_settings(kind))
}

/// The sandbox's test controls for `kind`.
pub fn sim(sandbox: &Sandbox, kind: PsaKind) -> &dyn PsaSim {
    sandbox.psa(kind.as_str())
}

/// The environment a CLI or Lambda process would get to talk to this sandbox's `kind`.
pub fn source(sandbox: &Sandbox, kind: PsaKind, audit_db: &Path) -> ConfigSource {
    let mut source = match kind {
        PsaKind::ConnectWise => crate::connectwise::source(sandbox, audit_db),
        PsaKind::Autotask => ConfigSource::from_pairs([
            ("AUTOTASK_ZONE_LOOKUP_URL", sandbox.autotask_zone_lookup_url()),
            ("AUTOTASK_USERNAME", AT_USERNAME.to_string()),
            ("AUTOTASK_SECRET", AT_SECRET.to_string()),
            ("AUTOTASK_INTEGRATION_CODE", AT_INTEGRATION_CODE.to_string()),
            ("OFFRAMP_AUTOTASK_ARCHIVED_CI_TYPES", AT_ARCHIVED_CI_TYPE.to_string()),
        ]),
        PsaKind::Halo => ConfigSource::from_pairs([
            ("HALO_URL", sandbox.halo_url()),
            ("HALO_TENANT", HALO_TENANT.to_string()),
            ("HALO_CLIENT_ID", HALO_CLIENT_ID.to_string()),
            ("HALO_CLIENT_SECRET", HALO_CLIENT_SECRET.to_string()),
            ("OFFRAMP_HALO_ARCHIVED_STATUS_IDS", HALO_ARCHIVED_STATUS.to_string()),
        ]),
    };
    source.set("OFFRAMP_PSA", kind.as_str());
    source.set("OFFRAMP_AUDIT_DB", audit_db.display().to_string());
    source.set("OFFRAMP_EXPORT_DIR", audit_db.with_file_name("exports").display().to_string());
    source.set("OFFRAMP_HTTP_MAX_RETRIES", "10");
    source.set("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "msp.example");
    source
}

/// A PSA client of any kind and a fresh SQLite audit trail.
pub struct PsaHarness {
    pub kind: PsaKind,
    pub psa: Box<dyn Psa>,
    pub audit: Arc<SqliteAuditStore>,
    pub dir: tempfile::TempDir,
}

impl PsaHarness {
    pub fn new(sandbox: &Sandbox, kind: PsaKind) -> Self {
        Self::with_client(kind, client(sandbox, kind))
    }

    pub fn with_client(kind: PsaKind, psa: Box<dyn Psa>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let audit = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("sqlite"));
        Self { kind, psa, audit, dir }
    }

    pub fn deps(&self) -> Deps<'_> {
        Deps {
            psa: self.psa.as_ref(),
            audit: self.audit.as_ref(),
            progress: &NoProgress,
            options: ConfigDeactivationOptions {
                concurrency: 8,
                audit_batch: 25,
                offboarded: offboarded_criteria(self.kind),
                ..Default::default()
            },
        }
    }
}

/// The offboarded criteria a deployment on `kind` gets from [`source`]'s settings: the
/// sandbox's `Offboarded` company status on ConnectWise, the company's inactive flag on
/// Autotask and HaloPSA (their default).
pub fn offboarded_criteria(kind: PsaKind) -> offramp::domain::OffboardedCriteria {
    match kind {
        PsaKind::ConnectWise => crate::connectwise::offboarded_criteria(),
        PsaKind::Autotask | PsaKind::Halo => {
            offramp::domain::OffboardedCriteria { inactive: true, ..Default::default() }
        }
    }
}
