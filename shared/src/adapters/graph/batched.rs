//! A leaver's reads and changes in `$batch`es (issue 14, docs/vendors/microsoft-graph.md#batch):
//! [`CloudDirectory::leaver`](crate::ports::CloudDirectory::leaver) is the user, then one
//! batch of the rest (plus one per 20 owned groups for their owner counts, and the pages of a
//! long list), and [`CloudDirectory::apply_user_changes`](crate::ports::CloudDirectory::apply_user_changes)
//! one batch per 20 changes. Every inner answer is read as the single call's answer is, so
//! the results are those of [`GraphDirectory::without_batches`].

use reqwest::Method;
use serde_json::{Value, json};

use crate::ports::{Directory, DirectoryError, DirectoryGroup, LeaverState, OwnedGroup, UserChange};

use super::client::{BatchAnswer, BatchRequest, PAGE_SIZE};
use super::cloud::{devices_filter, licence_body, object_id, object_reference, parse_device, parse_licences};
use super::{GROUP_SELECT, GraphDirectory, is_group, parse_group, parse_user};

fn succeeded(answer: &BatchAnswer) -> bool {
    (200..300).contains(&answer.status)
}

impl GraphDirectory {
    /// Sends every request on its own, never in a `$batch`: what a bench compares against.
    pub fn without_batches(mut self) -> Self {
        self.client.batches = false;
        self
    }

    fn batched_get(&self, segments: &[&str], query: &[(&str, &str)]) -> BatchRequest {
        let mut url = self.client.url(segments);
        url.query_pairs_mut().extend_pairs(query);
        BatchRequest { method: Method::GET, url: self.client.relative_of(&url), body: None }
    }

    /// The user (which resolves a UPN and says whether it exists), then manager,
    /// memberships, licences, owned objects and devices in one `$batch`.
    pub(super) async fn leaver_batched(&self, tenant: &str, user: &str) -> Result<Option<LeaverState>, DirectoryError> {
        let Some(found) = self.user(tenant, user).await? else { return Ok(None) };
        let id = found.id.as_str();
        object_id("the user id", id)?;
        let filter = devices_filter(id);
        let requests = [
            self.batched_get(&["users", id, "manager"], &[]),
            self.batched_get(&["users", id, "memberOf"], &[("$select", GROUP_SELECT), ("$top", PAGE_SIZE)]),
            self.batched_get(&["users", id], &[("$select", "id,licenseAssignmentStates")]),
            self.batched_get(&["users", id, "ownedObjects"], &[("$top", PAGE_SIZE)]),
            self.batched_get(&["deviceManagement", "managedDevices"], &[("$filter", &filter), ("$top", PAGE_SIZE)]),
        ];
        let answers = self.client.batch(tenant, &requests).await?;
        let [manager, member_of, licences, owned, devices] = <[BatchAnswer; 5]>::try_from(answers)
            .map_err(|_| DirectoryError::InvalidResponse { message: "$batch: answers missing".into() })?;
        // As `Directory::manager`: 404 `Request_ResourceNotFound` is "no manager".
        let manager = match manager.status {
            404 => None,
            _ if succeeded(&manager) => Some(parse_user(&manager.body)?),
            _ => return Err(self.client.batch_refusal("read manager", &manager)),
        };
        let groups = self.batched_rows(tenant, "read memberships", &member_of).await?;
        // Directory roles and administrative units are members' objects too: groups only.
        let groups = groups.iter().filter(|r| is_group(r)).map(parse_group).collect::<Result<_, _>>()?;
        if !succeeded(&licences) {
            return Err(self.client.batch_refusal("read licences", &licences));
        }
        let owned = self.batched_rows(tenant, "read owned objects", &owned).await?;
        let owned: Vec<DirectoryGroup> =
            owned.iter().filter(|r| is_group(r)).map(parse_group).collect::<Result<_, _>>()?;
        let counts = self.owner_counts(tenant, &owned).await?;
        let owned_groups = owned.into_iter().zip(counts).map(|(group, owner_count)| OwnedGroup { group, owner_count });
        let devices = self.batched_rows(tenant, "read managed devices", &devices).await?;
        Ok(Some(LeaverState {
            user: found,
            manager,
            groups,
            licences: parse_licences(&licences.body),
            owned_groups: owned_groups.collect(),
            devices: devices.iter().filter_map(parse_device).collect(),
        }))
    }

    /// Every row of a list whose first page came in a `$batch`: the next pages are ordinary
    /// GETs of `@odata.nextLink`, on the Graph host only.
    async fn batched_rows(&self, tenant: &str, what: &str, first: &BatchAnswer) -> Result<Vec<Value>, DirectoryError> {
        if !succeeded(first) {
            return Err(self.client.batch_refusal(what, first));
        }
        self.client.rest_of_list(tenant, what, &first.body).await
    }

    /// Each change one inner request, in `$batch`es of 20 (inner 429s sent again by
    /// [`super::client::GraphClient::batch`]); one result per change, in order.
    pub(super) async fn apply_changes_batched(
        &self,
        tenant: &str,
        user: &str,
        changes: &[UserChange],
    ) -> Vec<Result<(), DirectoryError>> {
        // A change that cannot be sent (a device id that is not a GUID) fails on its own.
        let prepared: Vec<Result<(&str, BatchRequest), DirectoryError>> =
            changes.iter().map(|change| self.change_request(user, change)).collect();
        let requests: Vec<BatchRequest> =
            prepared.iter().filter_map(|p| p.as_ref().ok()).map(|(_, request)| request.clone()).collect();
        let mut answers: Box<dyn Iterator<Item = Result<BatchAnswer, DirectoryError>> + Send> =
            match self.client.batch(tenant, &requests).await {
                Ok(answers) => Box::new(answers.into_iter().map(Ok)),
                Err(error) => Box::new(std::iter::repeat_n(Err(error), requests.len())),
            };
        prepared
            .into_iter()
            .map(|prepared| {
                let (what, _) = prepared?;
                let missing = || DirectoryError::InvalidResponse { message: "$batch: a request got no answer".into() };
                let answer = answers.next().unwrap_or_else(|| Err(missing()))?;
                if succeeded(&answer) {
                    return Ok(());
                }
                match self.client.batch_refusal(what, &answer) {
                    // As the single call: an owner already there is what was asked for.
                    DirectoryError::Refused { status: 400, message, .. }
                        if what == "add owner" && message.contains(super::directory::OWNER_ALREADY_THERE) =>
                    {
                        Ok(())
                    }
                    refusal => Err(refusal),
                }
            })
            .collect()
    }

    /// The inner request of `change` and the name its refusal carries (the single call's).
    fn change_request(&self, user: &str, change: &UserChange) -> Result<(&'static str, BatchRequest), DirectoryError> {
        let user_path = vec!["users", user];
        let (what, method, segments, body) = match change {
            UserChange::SetEnabled(enabled) => {
                ("set accountEnabled", Method::PATCH, user_path, Some(json!({ "accountEnabled": enabled })))
            }
            UserChange::ResetPassword(password) => {
                // Learned before it is sent: a refusal quoting the body must not carry it into
                // an error. The HTTP layer never logs a request body.
                self.client.http.redactor().learn(password.expose());
                let body = json!({
                    "passwordProfile": { "password": password.expose(), "forceChangePasswordNextSignIn": true }
                });
                ("reset password", Method::PATCH, user_path, Some(body))
            }
            UserChange::SetEmployeeId(id) => {
                ("set employeeId", Method::PATCH, user_path, Some(json!({ "employeeId": id })))
            }
            UserChange::RevokeSessions => {
                ("revoke sessions", Method::POST, vec!["users", user, "revokeSignInSessions"], None)
            }
            UserChange::RemoveManager => {
                ("remove manager", Method::DELETE, vec!["users", user, "manager", "$ref"], None)
            }
            UserChange::SetManager(manager) => {
                let body = Some(object_reference("users", manager));
                ("set manager", Method::PUT, vec!["users", user, "manager", "$ref"], body)
            }
            UserChange::RemoveMembership(group) => {
                // `/$ref` removes the membership; without it Graph deletes the user itself.
                ("remove membership", Method::DELETE, vec!["groups", group, "members", user, "$ref"], None)
            }
            UserChange::AddMembership(group) => {
                let body = Some(object_reference("directoryObjects", user));
                ("add membership", Method::POST, vec!["groups", group, "members", "$ref"], body)
            }
            UserChange::RemoveLicences(skus) => {
                ("assign licences", Method::POST, vec!["users", user, "assignLicense"], Some(licence_body(&[], skus)))
            }
            UserChange::RestoreLicences(skus) => {
                ("assign licences", Method::POST, vec!["users", user, "assignLicense"], Some(licence_body(skus, &[])))
            }
            UserChange::AddOwner(group) => {
                let body = Some(object_reference("directoryObjects", user));
                ("add owner", Method::POST, vec!["groups", group, "owners", "$ref"], body)
            }
            UserChange::RemoveOwner(group) => {
                ("remove owner", Method::DELETE, vec!["groups", group, "owners", user, "$ref"], None)
            }
            UserChange::RetireDevice(device) => {
                object_id("the device id", device)?;
                ("retire device", Method::POST, vec!["deviceManagement", "managedDevices", device, "retire"], None)
            }
        };
        Ok((what, BatchRequest { method, url: self.client.relative(&segments), body }))
    }
}
