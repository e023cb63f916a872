//! Adapters: the ports implemented for real systems.

pub mod audit_dynamodb;
pub mod audit_sqlite;
pub mod connectwise;
pub mod secrets_aws;
pub mod secrets_env;
