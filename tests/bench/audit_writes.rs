//! The audit trail's write cost: a configuration deactivation recorded in DynamoDB (moto),
//! counting the write requests the store sends. 1,000 configurations: moto copies its
//! table state for every transaction, and a 10,000-configuration run made it grow past
//! 15 GiB on this machine; the batching (25 change records, up to 100 snapshots per
//! request) does not depend on the run's size. Target: at most one write request
//! per 25 audit items (snapshots and change records), because change records go in
//! transactions of 25 conditional puts and snapshots in transactions of up to 100.

use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::ports::NoProgress;
use offramp::workflows::deactivate_configs::{
    ConfigDeactivationOptions, DeactivateConfigsRequest, Deps, deactivate_configs,
};
use offramp_sandbox::{Sandbox, SandboxConfig};

const CONFIGS: usize = 1_000;
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
        initiated_by: Some("bench".into()),
        ..Default::default()
    };
    let report = deactivate_configs(&deps, request).await;
    // Every configuration has one snapshot and one change record; the header and the
    // events are written too but not counted as items, so the figure errs on the safe side.
    AuditWrites {
        items: 2 * report.statistics.configs_found,
        requests: store.write_requests() - before,
        deactivated: report.statistics.configs_deactivated,
    }
}
