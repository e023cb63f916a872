//! Workflows: plain async functions over the ports.

pub mod deactivate_configs;
pub mod input;
pub mod rollback;
pub mod sweep;
