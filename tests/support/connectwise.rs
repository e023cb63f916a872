//! Wiring Offramp to a ConnectWise sandbox for tests.

use std::path::Path;
use std::sync::Arc;

use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::connectwise::{ConnectWiseClient, ConnectWiseSettings};
use offramp::config::ConfigSource;
use offramp::http::HttpSettings;
use offramp::ports::NoProgress;
use offramp::workflows::deactivate_configs::{ConfigDeactivationOptions, Deps};
use offramp_sandbox::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, Sandbox};

pub const DEMO_CLIENT: &str = "250";
pub const ACTIVE_CLIENT: &str = "100";
pub const EMPTY_CLIENT: &str = "260";
pub const LARGE_CLIENT: &str = "300";

pub fn settings(sandbox: &Sandbox) -> ConnectWiseSettings {
    ConnectWiseSettings {
        url: sandbox.connectwise_url(),
        company_id: CW_COMPANY_ID.into(),
        public_key: CW_PUBLIC_KEY.into(),
        private_key: CW_PRIVATE_KEY.into(),
        client_id: CW_CLIENT_ID.into(),
        inactive_status: "Inactive".into(),
        closed_ticket_status: ">Closed".into(),
    }
}

/// ConnectWise pacing in tests (requests per second): on, as in production, but above what
/// the sandbox serves, so every test runs through the limiter without being slowed by it.
/// Tests of the vendor's limit set the sandbox's own limit below it.
pub const TEST_RATE_LIMIT: f64 = 2_000.0;

/// Fast test settings: short backoffs, ConnectWise's client-side pacing on
/// ([`TEST_RATE_LIMIT`], the production burst rule: a tenth of the rate, at most 10).
pub fn http_settings() -> HttpSettings {
    HttpSettings {
        base_backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_millis(500),
        max_retries: 10,
        max_concurrency: 8,
        rate_limit_per_sec: Some(TEST_RATE_LIMIT),
        burst: 10,
        ..HttpSettings::default()
    }
}

pub fn client(sandbox: &Sandbox) -> ConnectWiseClient {
    ConnectWiseClient::new(settings(sandbox), http_settings()).expect("client")
}

/// The environment a CLI or Lambda process would get to talk to this sandbox.
pub fn source(sandbox: &Sandbox, audit_db: &Path) -> ConfigSource {
    ConfigSource::from_pairs([
        ("OFFRAMP_PSA", "connectwise".to_string()),
        ("CONNECTWISE_URL", sandbox.connectwise_url()),
        ("CONNECTWISE_COMPANY_ID", CW_COMPANY_ID.to_string()),
        ("CONNECTWISE_PUBLIC_KEY", CW_PUBLIC_KEY.to_string()),
        ("CONNECTWISE_PRIVATE_KEY", CW_PRIVATE_KEY.to_string()),
        ("CONNECTWISE_CLIENT_ID", CW_CLIENT_ID.to_string()),
        ("CONNECTWISE_RATE_LIMIT", TEST_RATE_LIMIT.to_string()),
        ("OFFRAMP_AUDIT_DB", audit_db.display().to_string()),
        // IT Glue exports are archived beside the trail, never in the working directory.
        ("OFFRAMP_EXPORT_DIR", audit_db.with_file_name("exports").display().to_string()),
        ("OFFRAMP_OFFBOARDED_STATUSES", "Offboarded".to_string()),
        // The MSP's own domain: a requester there may be sent the notification.
        ("OFFRAMP_REQUESTER_EMAIL_DOMAINS", "msp.example".to_string()),
    ])
}

/// A PSA client and a fresh SQLite audit trail in a temporary directory.
pub struct Harness {
    pub psa: ConnectWiseClient,
    pub audit: Arc<SqliteAuditStore>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new(sandbox: &Sandbox) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let audit = Arc::new(SqliteAuditStore::open(&dir.path().join("audit.sqlite")).expect("sqlite"));
        Self { psa: client(sandbox), audit, dir }
    }

    pub fn deps(&self) -> Deps<'_> {
        Deps {
            psa: &self.psa,
            audit: self.audit.as_ref(),
            progress: &NoProgress,
            options: ConfigDeactivationOptions {
                concurrency: 8,
                audit_batch: 25,
                offboarded: offboarded_criteria(),
                ..Default::default()
            },
        }
    }
}

/// The offboarded criteria [`source`] configures: the sandbox's `Offboarded` company status.
pub fn offboarded_criteria() -> offramp::domain::OffboardedCriteria {
    offramp::domain::OffboardedCriteria { statuses: vec!["Offboarded".into()], ..Default::default() }
}

/// The workflow 000 report fields (docs/workflows.md#000-report): every report must have exactly
/// these top-level fields, plus the documented extras.
pub fn assert_seed_shape(report: &serde_json::Value) {
    let required = ["success", "client_id", "client_name", "timestamp", "statistics", "configs", "warnings", "errors"];
    let extras = ["operation_id", "dry_run", "plan_hash", "status", "blast_radius"];
    let object = report.as_object().expect("report is an object");
    for field in required {
        assert!(object.contains_key(field), "missing {field} in {report}");
    }
    for key in object.keys() {
        assert!(required.contains(&key.as_str()) || extras.contains(&key.as_str()), "unexpected field {key}");
    }
    let stats = report["statistics"].as_object().expect("statistics");
    let mut keys: Vec<&str> = stats.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["configs_deactivated", "configs_found", "configs_skipped", "errors"]);
    for config in report["configs"].as_array().expect("configs") {
        let mut keys: Vec<&str> = config.as_object().expect("config").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["config_id", "config_name", "previous_status", "status"]);
        assert!(config["config_id"].is_string());
    }
    for error in report["errors"].as_array().expect("errors") {
        assert!(error["code"].is_string() && error["message"].is_string() && error["timestamp"].is_string(), "{error}");
    }
    assert!(report["timestamp"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
    assert!(report["success"].is_boolean());
}
