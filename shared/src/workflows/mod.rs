//! Workflows: each is a small implementation over the operation engine
//! (`crate::operation`); none imports another. `restorers` gathers what each one knows
//! how to undo, for the rollback.

pub mod client_ticket;
pub mod deactivate_configs;
pub mod deactivate_contacts;
pub mod delete_itglue_org;
pub mod input;
pub mod offboard_user;
pub mod offboarded;
pub mod org_settings;
pub mod rollback;

pub use deactivate_configs::sweep;

use std::sync::LazyLock;

use crate::operation::RestoreRegistry;

static RESTORERS: LazyLock<RestoreRegistry> = LazyLock::new(|| {
    let mut registry = RestoreRegistry::default();
    deactivate_configs::register(&mut registry);
    deactivate_contacts::register(&mut registry);
    delete_itglue_org::register(&mut registry);
    offboard_user::register(&mut registry);
    rollback::register(&mut registry);
    registry
});

/// What every workflow registered it can undo (and what it cannot).
pub fn restorers() -> &'static RestoreRegistry {
    &RESTORERS
}
