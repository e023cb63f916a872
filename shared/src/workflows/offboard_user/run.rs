//! One run of a user offboarding, fresh or resumed: the systems, where the leaver is, the
//! client and the plan. What a run does is in `apply`; the ticket notes (`ticket`) and the
//! read-back (`verify`) take it as it is.

use super::OffboardUserDeps;
use super::plan::Plan;
use super::selection::ClientSettings;
use super::tasks::Target;

pub(super) struct Run<'a, 'r> {
    pub deps: &'a OffboardUserDeps<'r>,
    pub target: Target<'a>,
    pub client: &'a ClientSettings,
    pub plan: &'a Plan,
}

impl<'a, 'r> Run<'a, 'r> {
    pub fn new(
        deps: &'a OffboardUserDeps<'r>,
        operation_id: &'a str,
        client: &'a ClientSettings,
        plan: &'a Plan,
    ) -> Self {
        let target = Target {
            operation_id,
            tenant: &plan.tenant,
            user_id: &plan.user_id,
            upn: &plan.user_principal_name,
            ad_account: plan.ad_account.as_deref(),
        };
        Run { deps, target, client, plan }
    }
}
