//! How a rollback puts back what a user offboarding changed. Registered with the engine's
//! restore registry; the PSA contact's record is a contact deactivation's, so its restorer
//! is that one.

use super::WORKFLOW;
use crate::domain::ItemKind;
use crate::operation::restore::{RestoreRegistry, Reversibility};

pub fn register(registry: &mut RestoreRegistry) {
    registry
        .register_workflow(WORKFLOW, Reversibility::Reversible)
        .keep_as_record(ItemKind::UserPassword)
        .keep_as_record(ItemKind::UserSessions)
        .keep_as_record(ItemKind::ManagedDevice)
        .keep_as_record(ItemKind::MobileDevice)
        .keep_as_record(ItemKind::StoredPassword);
}
