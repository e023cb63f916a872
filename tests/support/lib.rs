//! Test support shared by the integration tests.

pub mod approvals;
pub mod audit_conformance;
pub mod chain;
pub mod chromium;
pub mod connectwise;
pub mod crashes;
pub mod deployment;
pub mod faulty_audit;
pub mod lambda_emulator;
pub mod lease_conformance;
pub mod legacy_records;
pub mod moto;
pub mod offboarding;
pub mod psa;
pub mod samba;
pub mod sandbox_process;
pub mod webhook_storm;
pub mod webhooks;
