//! The `offramp` binary as an MSP engineer runs it, against the sandbox: one test binary,
//! one module per command family, with the shared environment helper in `common`.
//!
//! Every `.rs` file in this folder must be declared below; the `test_files` test of the
//! integration binary (`tests/integration/test_files.rs`) fails when one is not.

mod common;

mod cli_audit_report;
mod cli_client;
mod cli_configs;
mod cli_contacts;
mod cli_itglue;
mod cli_secrets;
mod cli_user;
mod cli_webhooks;
