//! The approval flow's test harness (tests/integration/approvals.rs, approval_page.rs): the
//! stores, the sandbox's Graph mail and ConnectWise for the e-mails and the ticket note, the
//! in-process callback that counts deliveries, and the page served on loopback.

use std::sync::Arc;
use std::time::Duration;

use offramp::adapters::approvals_memory::InProcessCallback;
use offramp::adapters::audit_dynamodb::DynamoDbAuditStore;
use offramp::adapters::audit_sqlite::SqliteAuditStore;
use offramp::adapters::notify_graph::GraphMailNotifier;
use offramp::approval::{ApprovalConfig, ApprovalDeps, ApprovalRequest};
use offramp::domain::{ApprovalCallback, ApprovalClient, PlannedStep, PsaKind};
use offramp::ports::{ApprovalStore, AuditStore, Notifier, Psa, SettingsStore};
use offramp_sandbox::Sandbox;
use serde_json::json;

use crate::audit_conformance::operation_record;

/// The sandbox company whose open tickets the note goes on.
pub const CLIENT_ID: &str = "270";
pub const REQUESTER: &str = "requester@msp.example";
pub const APPROVERS: [&str; 2] = ["alice@msp.example", "bob@msp.example"];

/// One store implementing the three ports the approval flow stores in.
pub trait Stores: ApprovalStore + AuditStore + SettingsStore {}
impl<T: ApprovalStore + AuditStore + SettingsStore> Stores for T {}

pub struct ApprovalFixture {
    pub store: Arc<dyn Stores>,
    pub callback: InProcessCallback,
    pub config: ApprovalConfig,
    pub notifier: Arc<dyn Notifier>,
    pub psa: Arc<dyn Psa>,
    /// The parent operation the approval is recorded against.
    pub parent_operation_id: String,
    /// An open ticket of the client in the sandbox.
    pub ticket_id: String,
}

impl ApprovalFixture {
    /// With `store`, the page's links under `base_url`.
    pub async fn new(sandbox: &Sandbox, store: Arc<dyn Stores>, base_url: &str) -> Self {
        let parent = operation_record(CLIENT_ID, "connectwise", false);
        store.create_operation(&parent).await.expect("parent operation");
        let notifier =
            GraphMailNotifier::new(crate::offboarding::mail_settings(sandbox), crate::connectwise::http_settings())
                .expect("Graph mail notifier");
        let ticket = crate::psa::sim(sandbox, PsaKind::ConnectWise).ticket_ids_of(CLIENT_ID.parse().unwrap())[0];
        Self {
            store,
            callback: InProcessCallback::new(),
            config: ApprovalConfig {
                base_url: base_url.to_string(),
                default_approvers: APPROVERS.iter().map(|a| a.to_string()).collect(),
                approver_must_differ: false,
            },
            notifier: Arc::new(notifier),
            psa: Arc::from(crate::psa::client(sandbox, PsaKind::ConnectWise)),
            parent_operation_id: parent.operation_id,
            ticket_id: ticket.to_string(),
        }
    }

    pub async fn sqlite(sandbox: &Sandbox, path: &std::path::Path, base_url: &str) -> Self {
        Self::new(sandbox, Arc::new(SqliteAuditStore::open(path).expect("SQLite store")), base_url).await
    }

    pub async fn dynamodb(sandbox: &Sandbox, base_url: &str) -> Self {
        let store = DynamoDbAuditStore::new(crate::moto::dynamodb_client().await, crate::moto::unique_table_name());
        store.create_table_if_missing().await.expect("table");
        Self::new(sandbox, Arc::new(store), base_url).await
    }

    pub fn deps(&self) -> ApprovalDeps<'_> {
        ApprovalDeps {
            store: self.store.as_ref(),
            audit: self.store.as_ref(),
            settings: self.store.as_ref(),
            notifier: Some(self.notifier.as_ref()),
            psa: Some(self.psa.as_ref()),
            callback: &self.callback,
            config: &self.config,
        }
    }

    /// A chain's request: three planned steps over two systems, one item name that is markup.
    pub fn request(&self, expires_in: Duration) -> ApprovalRequest {
        ApprovalRequest {
            parent_operation_id: self.parent_operation_id.clone(),
            psa: "connectwise".into(),
            client: ApprovalClient { id: CLIENT_ID.into(), name: "Contoso <Zürich> & Co".into() },
            requested_by: REQUESTER.into(),
            reason: Some("contract ended".into()),
            plans: sample_plans(),
            approvers: Vec::new(),
            expires_in,
            callback: ApprovalCallback::InProcess,
            ticket_id: Some(self.ticket_id.clone()),
        }
    }
}

pub fn sample_plans() -> Vec<PlannedStep> {
    vec![
        PlannedStep {
            step: "offboard_users".into(),
            system: "microsoft365".into(),
            plan_hash: "sha256:users-1111".into(),
            summary: json!({"counts": {"users": 2}, "items": {"users": ["ann@contoso.example", "ben@contoso.example"]}}),
        },
        PlannedStep {
            step: "deactivate_contacts".into(),
            system: "connectwise".into(),
            plan_hash: "sha256:contacts-2222".into(),
            summary: json!({"counts": {"contacts": 3}, "items": {"contacts": ["Ann A", "Ben B", "<script>alert(1)</script>"]}}),
        },
        PlannedStep {
            step: "deactivate_configs".into(),
            system: "connectwise".into(),
            plan_hash: "sha256:configs-3333".into(),
            summary: json!({"counts": {"configurations": 17}, "items": {"configurations": ["fw-01", "nas-02"]}}),
        },
    ]
}

/// The token of a link (`…/approvals/{token}`).
pub fn token_of(link: &str) -> &str {
    link.rsplit_once("/approvals/").expect("an approval link").1
}

/// Serve the approval page on `listener` until the test ends.
pub fn serve(listener: tokio::net::TcpListener, fixture: Arc<ApprovalFixture>) -> tokio::task::JoinHandle<()> {
    use axum::body::Bytes;
    use axum::extract::{OriginalUri, State};
    use axum::http::{Method, StatusCode};
    use axum::response::IntoResponse;

    async fn page(
        State(fixture): State<Arc<ApprovalFixture>>,
        method: Method,
        OriginalUri(uri): OriginalUri,
        body: Bytes,
    ) -> axum::response::Response {
        let answer = offramp::approval::page::handle(fixture.deps(), method.as_str(), uri.path(), &body).await;
        let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
        for (name, value) in answer.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    }
    let app = axum::Router::new().route("/approvals/{token}", axum::routing::any(page)).with_state(fixture);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("approval page server");
    })
}
