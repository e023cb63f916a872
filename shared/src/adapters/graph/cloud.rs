//! [`CloudDirectory`] over Graph: licences (docs/vendors/microsoft-graph.md#licences) and
//! Intune devices (docs/vendors/microsoft-graph.md#devices).

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::HttpRequest;
use crate::ports::{
    CloudDirectory, DirectoryError, DirectoryUser, LeaverState, Licence, ManagedDevice, UserChange,
    apply_changes_one_by_one, async_trait, read_leaver_one_by_one,
};

use super::{GraphDirectory, USER_SELECT, parse_user, text};

impl GraphDirectory {
    /// `assignLicense` needs BOTH lists, even when one is empty.
    async fn assign_licences(
        &self,
        tenant: &str,
        user: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), DirectoryError> {
        let url = self.client.url(&["users", user, "assignLicense"]);
        let body = licence_body(add, remove);
        // The same assignment twice leaves the same licences: safe to repeat.
        self.client.write(tenant, "assign licences", Method::POST, url, Some(&body)).await.map(drop)
    }
}

/// The body of `assignLicense`.
pub(super) fn licence_body(add: &[String], remove: &[String]) -> Value {
    json!({
        "addLicenses": add.iter().map(|sku| json!({ "skuId": sku, "disabledPlans": [] })).collect::<Vec<_>>(),
        "removeLicenses": remove,
    })
}

/// The licences of a user read with `$select=licenseAssignmentStates`.
pub(super) fn parse_licences(body: &Value) -> Vec<Licence> {
    let states = body["licenseAssignmentStates"].as_array().map(Vec::as_slice).unwrap_or_default();
    states
        .iter()
        .filter_map(|s| Some(Licence { sku_id: text(s, "skuId")?, by_group: text(s, "assignedByGroup") }))
        .collect()
}

/// A managed device of a list; `None` without an id.
pub(super) fn parse_device(device: &Value) -> Option<ManagedDevice> {
    Some(ManagedDevice {
        id: text(device, "id")?,
        name: text(device, "deviceName").unwrap_or_default(),
        operating_system: text(device, "operatingSystem").unwrap_or_default(),
        management_state: text(device, "managementState").unwrap_or_default(),
    })
}

/// The `$filter` of a user's managed devices (docs/vendors/microsoft-graph.md#devices).
pub(super) fn devices_filter(user_id: &str) -> String {
    format!("userId eq '{user_id}'")
}

/// A device id or user id goes into a `$filter` or a path: only a GUID's characters.
pub(super) fn object_id(what: &str, id: &str) -> Result<(), DirectoryError> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Ok(());
    }
    Err(DirectoryError::Configuration { message: format!("{what} must be an object id (GUID), not '{id}'") })
}

#[async_trait]
impl CloudDirectory for GraphDirectory {
    // `assignedLicenses/$count ne 0` is an advanced query: it needs `$count=true` and
    // `ConsistencyLevel: eventual` (docs/vendors/microsoft-graph.md#licensed-users). Disabled
    // accounts are dropped here, from the record: they are not leavers to offboard again.
    async fn licensed_users(&self, tenant: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let mut url = self.client.url(&["users"]);
        url.query_pairs_mut()
            .append_pair("$filter", "assignedLicenses/$count ne 0")
            .append_pair("$count", "true")
            .append_pair("$select", USER_SELECT);
        let rows = self.client.list_advanced(tenant, "list licensed users", url).await?;
        let users = rows.iter().map(parse_user).collect::<Result<Vec<_>, _>>()?;
        Ok(users.into_iter().filter(|u| u.enabled).collect())
    }

    async fn licences(&self, tenant: &str, user: &str) -> Result<Vec<Licence>, DirectoryError> {
        let mut url = self.client.url(&["users", user]);
        url.query_pairs_mut().append_pair("$select", "id,licenseAssignmentStates");
        let body = self.client.expect(tenant, "read licences", HttpRequest::new(Method::GET, url)).await?;
        Ok(parse_licences(&body))
    }

    async fn remove_licences(&self, tenant: &str, user: &str, sku_ids: &[String]) -> Result<(), DirectoryError> {
        self.assign_licences(tenant, user, &[], sku_ids).await
    }

    async fn restore_licences(&self, tenant: &str, user: &str, sku_ids: &[String]) -> Result<(), DirectoryError> {
        self.assign_licences(tenant, user, sku_ids, &[]).await
    }

    async fn managed_devices(&self, tenant: &str, user_id: &str) -> Result<Vec<ManagedDevice>, DirectoryError> {
        object_id("the user id", user_id)?;
        let mut url = self.client.url(&["deviceManagement", "managedDevices"]);
        url.query_pairs_mut().append_pair("$filter", &devices_filter(user_id));
        let rows = self.client.list(tenant, "read managed devices", url).await?;
        Ok(rows.iter().filter_map(parse_device).collect())
    }

    async fn retire_device(&self, tenant: &str, device_id: &str) -> Result<(), DirectoryError> {
        object_id("the device id", device_id)?;
        let url = self.client.url(&["deviceManagement", "managedDevices", device_id, "retire"]);
        // A retire repeated retires the same device: safe to repeat.
        self.client.write(tenant, "retire device", Method::POST, url, None).await.map(drop)
    }

    /// The user, then the rest in one `$batch` (docs/vendors/microsoft-graph.md#batch).
    async fn leaver(&self, tenant: &str, user: &str) -> Result<Option<LeaverState>, DirectoryError> {
        if !self.client.batches {
            return read_leaver_one_by_one(self, tenant, user).await;
        }
        self.leaver_batched(tenant, user).await
    }

    /// Every change an inner request of a `$batch` of 20 (docs/vendors/microsoft-graph.md#batch).
    async fn apply_user_changes(
        &self,
        tenant: &str,
        user: &str,
        changes: &[UserChange],
    ) -> Vec<Result<(), DirectoryError>> {
        if !self.client.batches {
            return apply_changes_one_by_one(self, tenant, user, changes).await;
        }
        self.apply_changes_batched(tenant, user, changes).await
    }
}

/// What Graph wants in `@odata.id`: the public URL of the object, whatever host answers us.
pub(super) fn object_reference(collection: &str, id: &str) -> Value {
    json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{collection}/{id}") })
}
