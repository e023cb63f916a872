//! Workflows: plain async functions over the ports.

pub mod deactivate_configs;
pub mod deactivate_contacts;
pub mod delete_itglue_org;
pub mod input;
pub mod org_settings;
pub mod rollback;
pub mod sweep;
