//! The `offboard-user` function (workflow 003, docs/workflows.md#003-user-offboarding):
//! direct invoke / Step Functions (the event is the request), API Gateway (the body is).
//! It has no schedule: an offboarding names one leaver, and a schedule names nobody, so a
//! scheduled event is refused (`InvalidInput`) like every function but the sweeps.

use serde_json::Value;

use super::{Answer, Refused, answer, request_of, with_initiator};
use crate::app::UserOffboardingServices;
use crate::error::{ErrorCode, OfframpError, Outcome};
use crate::operation::IdempotentReport;
use crate::workflows::offboard_user::{OffboardUserReport, OffboardUserRequest, offboard_user};

impl Outcome for OffboardUserReport {
    fn succeeded(&self) -> bool {
        self.answered()
    }
    fn primary_code(&self) -> Option<ErrorCode> {
        self.primary_error()
    }
}

/// The report of an event that never became a request.
pub(super) fn refused(error: &OfframpError) -> OffboardUserReport {
    OffboardUserReport::from_error(error)
}

/// Handle one `offboard-user` invocation. Never panics; every outcome is JSON.
pub async fn offboard_user_event(services: &UserOffboardingServices, event: Value, invoked_by: &str) -> Answer {
    let (reply, mut request, caller) = match request_of::<OffboardUserRequest>(event) {
        Ok(parsed) => parsed,
        Err(Refused { reply, error }) => return answer(reply, &refused(&error)),
    };
    request.initiated_by = with_initiator(&caller, request.initiated_by, invoked_by);
    let deps = services.offboard_user_deps();
    let audit = services.services.audit.as_ref();
    answer(reply, &super::api::run_assigned(audit, &caller, Box::pin(offboard_user(&deps, request))).await)
}
