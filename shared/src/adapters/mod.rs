//! Adapters: the ports implemented for real systems.

pub mod approvals_memory;
pub mod archive_local;
pub mod archive_s3;
pub mod audit_dynamodb;
pub(crate) mod audit_records;
#[cfg(feature = "sqlite")]
pub mod audit_sqlite;
pub mod autotask;
pub mod connectwise;
pub mod delivery_log;
pub mod exchange;
pub mod graph;
pub mod halo;
pub mod itglue;
pub mod ldap;
pub mod m365_absent;
pub mod notify_graph;
pub mod notify_webhook;
pub(crate) mod rotating_secret;
pub mod secret_vault_aws;
pub mod secrets_aws;
pub mod secrets_env;
pub mod secrets_routed;
pub mod task_callback_sfn;
pub(crate) mod vendor_http;
