//! The audit trail's write cost: a 10,000-configuration deactivation recorded in DynamoDB
//! (moto), counting the write requests the store sends and the audit items moto then
//! holds for the operation (header, events, snapshots, change records). Target: at most
//! one write request per 25 audit items, because change records go in transactions of 25
//! conditional puts and snapshots in transactions of up to 100. `make bench` runs moto
//! through scripts/moto_bench_server.py, which stops moto copying the table once per
//! item of every transaction (hours and >15 GiB on this run); its answers are the same.

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::ports::{AuditStore, NoProgress};
use offramp::workflows::deactivate_configs::{
    ConfigDeactivationOptions, DeactivateConfigsRequest, Deps, deactivate_configs,
};
use offramp_sandbox::{Sandbox, SandboxConfig};

pub const CONFIGS: usize = 10_000;
/// Most audit items one write request may stand for, at worst.
const TARGET_ITEMS_PER_REQUEST: f64 = 25.0;

pub struct AuditWrites {
    pub items: u64,
    pub requests: u64,
    pub deactivated: u64,
}

impl AuditWrites {
    pub fn items_per_request(&self) -> f64 {
        self.items as f64 / self.requests.max(1) as f64
    }

    pub fn met(&self) -> bool {
        self.deactivated == CONFIGS as u64 && self.items_per_request() >= TARGET_ITEMS_PER_REQUEST
    }
}

/// Run the measurement; `None` without a moto server (`OFFRAMP_TEST_MOTO_URL`).
pub fn measure() -> Option<AuditWrites> {
    std::env::var("OFFRAMP_TEST_MOTO_URL").ok()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    Some(runtime.block_on(run()))
}

async fn run() -> AuditWrites {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: CONFIGS, ..SandboxConfig::default() })
        .await
        .expect("sandbox");
    let store =
        DynamoDbAuditStore::new(offramp_tests::moto::dynamodb_client().await, offramp_tests::moto::unique_table_name());
    store.create_table_if_missing().await.expect("table");
    let before = store.write_requests();
    let psa = offramp_tests::connectwise::client(&sandbox);
    let deps = Deps {
        psa: &psa,
        audit: &store,
        progress: &NoProgress,
        options: ConfigDeactivationOptions { concurrency: 8, ..Default::default() },
    };
    let request = DeactivateConfigsRequest {
        client_id: Some(offramp_tests::connectwise::LARGE_CLIENT.into()),
        override_blast_radius: true,
        // The large client is not offboarded: deactivated on purpose.
        allow_active_client: true,
        initiated_by: Some("bench".into()),
        ..Default::default()
    };
    let report = deactivate_configs(&deps, request).await;
    let requests = store.write_requests() - before;
    // Counted in the store, not taken from the report.
    let operation_id = report.operation_id.clone().expect("the run names its operation");
    let trail = store.operation(&operation_id).await.expect("read the trail").expect("the operation is in the trail");
    AuditWrites {
        items: (1 + trail.events.len() + trail.snapshots.len() + trail.changes.len()) as u64,
        requests,
        deactivated: report.statistics.configs_deactivated,
    }
}
