//! [`Directory`] over Graph (docs/vendors/microsoft-graph.md#users-and-groups).

use reqwest::Method;
use serde_json::{Value, json};

use crate::ports::{Directory, DirectoryError, DirectoryGroup, DirectoryUser, OwnedGroup, async_trait};
use crate::secret::SecretString;

use super::client::BatchRequest;
use super::cloud::object_reference;
use super::{GROUP_SELECT, GraphDirectory, USER_SELECT, is_group, parse_group, parse_user};

impl GraphDirectory {
    async fn patch_user(&self, tenant: &str, user: &str, what: &str, body: Value) -> Result<(), DirectoryError> {
        let url = self.client.url(&["users", user]);
        self.client.write(tenant, what, Method::PATCH, url, Some(&body)).await.map(drop)
    }

    /// Owner counts of `groups`, one `$batch` per 20 groups. Only the first page of owners
    /// is counted: enough to tell one owner from several.
    pub(super) async fn owner_counts(
        &self,
        tenant: &str,
        groups: &[DirectoryGroup],
    ) -> Result<Vec<usize>, DirectoryError> {
        let requests: Vec<BatchRequest> = groups
            .iter()
            .map(|g| BatchRequest {
                method: Method::GET,
                url: self.client.relative(&["groups", &g.id, "owners"]),
                body: None,
            })
            .collect();
        let answers = self.client.batch(tenant, &requests).await?;
        answers
            .iter()
            .map(|a| match a.status {
                200..=299 => Ok(a.body["value"].as_array().map_or(0, Vec::len)),
                _ => Err(self.client.batch_refusal("group owners", a)),
            })
            .collect()
    }
}

#[async_trait]
impl Directory for GraphDirectory {
    async fn user(&self, tenant: &str, user: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        let mut url = self.client.url(&["users", user]);
        url.query_pairs_mut().append_pair("$select", USER_SELECT);
        self.client.get_optional(tenant, "read user", url).await?.as_ref().map(parse_user).transpose()
    }

    async fn manager(&self, tenant: &str, user: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        // 404 `Request_ResourceNotFound` is "no manager"; a missing user is told by `user`.
        let url = self.client.url(&["users", user, "manager"]);
        self.client.get_optional(tenant, "read manager", url).await?.as_ref().map(parse_user).transpose()
    }

    async fn remove_manager(&self, tenant: &str, user: &str) -> Result<(), DirectoryError> {
        let url = self.client.url(&["users", user, "manager", "$ref"]);
        self.client.write(tenant, "remove manager", Method::DELETE, url, None).await.map(drop)
    }

    async fn set_manager(&self, tenant: &str, user: &str, manager: &str) -> Result<(), DirectoryError> {
        let url = self.client.url(&["users", user, "manager", "$ref"]);
        let body = object_reference("users", manager);
        self.client.write(tenant, "set manager", Method::PUT, url, Some(&body)).await.map(drop)
    }

    async fn groups_of(&self, tenant: &str, user: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let mut url = self.client.url(&["users", user, "memberOf"]);
        url.query_pairs_mut().append_pair("$select", GROUP_SELECT);
        let rows = self.client.list(tenant, "read memberships", url).await?;
        // Directory roles and administrative units are members' objects too: groups only.
        rows.iter().filter(|r| is_group(r)).map(parse_group).collect()
    }

    async fn add_member(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError> {
        let url = self.client.url(&["groups", group, "members", "$ref"]);
        let body = object_reference("directoryObjects", user);
        // Not idempotent: a second add is refused (400), so only a 429 is retried.
        let request = crate::http::HttpRequest::new(Method::POST, url).json_body(&body);
        self.client.expect(tenant, "add membership", request).await.map(drop)
    }

    async fn remove_member(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError> {
        // `/$ref` removes the membership; without it Graph deletes the user itself.
        let url = self.client.url(&["groups", group, "members", user, "$ref"]);
        self.client.write(tenant, "remove membership", Method::DELETE, url, None).await.map(drop)
    }

    /// In `$batch`es of 20: a leaver with many memberships costs a twentieth of the requests.
    async fn remove_memberships(&self, tenant: &str, user: &str, groups: &[String]) -> Vec<Result<(), DirectoryError>> {
        let requests: Vec<BatchRequest> = groups
            .iter()
            .map(|g| BatchRequest {
                method: Method::DELETE,
                url: self.client.relative(&["groups", g, "members", user, "$ref"]),
                body: None,
            })
            .collect();
        match self.client.batch(tenant, &requests).await {
            Ok(answers) => answers
                .iter()
                .map(|a| {
                    if (200..300).contains(&a.status) {
                        Ok(())
                    } else {
                        Err(self.client.batch_refusal("remove membership", a))
                    }
                })
                .collect(),
            Err(error) => groups.iter().map(|_| Err(error.clone())).collect(),
        }
    }

    async fn set_enabled(&self, tenant: &str, user: &str, enabled: bool) -> Result<(), DirectoryError> {
        self.patch_user(tenant, user, "set accountEnabled", json!({ "accountEnabled": enabled })).await
    }

    async fn set_employee_id(&self, tenant: &str, user: &str, employee_id: Option<&str>) -> Result<(), DirectoryError> {
        // `null` clears it: ordinary Graph behaviour, UNCONFIRMED for this property.
        self.patch_user(tenant, user, "set employeeId", json!({ "employeeId": employee_id })).await
    }

    async fn reset_password(&self, tenant: &str, user: &str, password: &SecretString) -> Result<(), DirectoryError> {
        // Learned first: a refusal that quotes the body must not carry it into an error.
        self.client.http.redactor().learn(password.expose());
        let body =
            json!({ "passwordProfile": { "password": password.expose(), "forceChangePasswordNextSignIn": true } });
        self.patch_user(tenant, user, "reset password", body).await
    }

    async fn revoke_sessions(&self, tenant: &str, user: &str) -> Result<(), DirectoryError> {
        // 200 `{"value": true}` or, in some tenants, 204: both succeed.
        let url = self.client.url(&["users", user, "revokeSignInSessions"]);
        let request = crate::http::HttpRequest::new(Method::POST, url).retry(crate::http::Retry::Idempotent);
        self.client.expect(tenant, "revoke sessions", request).await.map(drop)
    }

    async fn owned_groups(&self, tenant: &str, user: &str) -> Result<Vec<OwnedGroup>, DirectoryError> {
        let url = self.client.url(&["users", user, "ownedObjects"]);
        let rows = self.client.list(tenant, "read owned objects", url).await?;
        let groups: Vec<DirectoryGroup> =
            rows.iter().filter(|r| is_group(r)).map(parse_group).collect::<Result<_, _>>()?;
        let counts = self.owner_counts(tenant, &groups).await?;
        Ok(groups.into_iter().zip(counts).map(|(group, owner_count)| OwnedGroup { group, owner_count }).collect())
    }

    async fn add_owner(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError> {
        let url = self.client.url(&["groups", group, "owners", "$ref"]);
        let body = object_reference("directoryObjects", user);
        let request = crate::http::HttpRequest::new(Method::POST, url).json_body(&body);
        match self.client.expect(tenant, "add owner", request).await {
            // An owner already there is what was asked for: a repeated add (a retry, a
            // resumed run) succeeds (docs/vendors/microsoft-graph.md#groups).
            Err(DirectoryError::Refused { status: 400, message, .. }) if message.contains(OWNER_ALREADY_THERE) => {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    async fn remove_owner(&self, tenant: &str, group: &str, user: &str) -> Result<(), DirectoryError> {
        // `/$ref` removes the ownership, as for members.
        let url = self.client.url(&["groups", group, "owners", user, "$ref"]);
        self.client.write(tenant, "remove owner", Method::DELETE, url, None).await.map(drop)
    }
}

/// Graph's 400 to an owner reference added twice (docs/vendors/microsoft-graph.md#groups).
pub(super) const OWNER_ALREADY_THERE: &str = "One or more added object references already exist";
