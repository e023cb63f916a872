//! Organization settings ([`SettingsStore`]) in the audit table: one item per version.

use std::collections::HashMap;

use super::items::{Item, attr, parse_data, setting_item, string_attr};
use super::{DynamoDbAuditStore, keys};
use crate::adapters::audit_records::sort_settings;
use crate::domain::SettingRecord;
use crate::error::AuditError;
use crate::ports::{SettingsStore, async_trait};

#[async_trait]
impl SettingsStore for DynamoDbAuditStore {
    async fn get_setting(&self, psa: &str, scope: &str, key: &str) -> Result<Option<SettingRecord>, AuditError> {
        // Newest first, one item: sort keys order the versions by their UUIDv7.
        let out = self
            .prefix_query(keys::settings_pk(psa, scope), &keys::setting_sk_prefix(key))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| self.sdk_error("Query (setting)", e))?;
        out.items.unwrap_or_default().first().map(|item| parse_data(item, "setting")).transpose()
    }

    async fn put_setting(&self, record: &SettingRecord) -> Result<(), AuditError> {
        let version_id = uuid::Uuid::now_v7().to_string();
        let item = setting_item(record, &version_id)?;
        self.put_new("PutItem (setting)", item, || {
            format!("setting {}/{}/{}/{version_id}", record.psa, record.scope, record.key)
        })
        .await
    }

    async fn list_settings(&self, psa: &str, scope: &str) -> Result<Vec<SettingRecord>, AuditError> {
        let query = self.prefix_query(keys::settings_pk(psa, scope), keys::SETTING_KEY_PREFIX);
        let items = self.query_items("Query (settings)", query, None).await?;
        newest_settings(&items)
    }
}

/// The newest record of each key among one partition's items, sorted by key. Items come
/// in sort-key order (oldest version of a key first), so the last one of a key wins.
fn newest_settings(items: &[Item]) -> Result<Vec<SettingRecord>, AuditError> {
    let mut newest: HashMap<String, (&str, SettingRecord)> = HashMap::new();
    for item in items {
        let sk = string_attr(item, attr::SK);
        let record: SettingRecord = parse_data(item, "setting")?;
        match newest.get(&record.key) {
            // Compare the sort keys rather than trust the order the items came in.
            Some((seen, _)) if *seen >= sk => {}
            _ => {
                newest.insert(record.key.clone(), (sk, record));
            }
        }
    }
    let mut records: Vec<SettingRecord> = newest.into_values().map(|(_, record)| record).collect();
    sort_settings(&mut records);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_wins_whatever_the_order() {
        let record = SettingRecord {
            psa: "halo".into(),
            scope: "*".into(),
            key: "k".into(),
            value: None,
            set_by: "tester".into(),
            set_at: crate::domain::now(),
        };
        let item = setting_item(&record, "0190").expect("item");
        let newer = setting_item(&SettingRecord { value: Some("v".into()), ..record.clone() }, "0191").expect("item");
        // Whatever order the items come in, the greater sort key wins.
        assert_eq!(newest_settings(&[newer.clone(), item.clone()]).expect("newest")[0].value.as_deref(), Some("v"));
        assert_eq!(newest_settings(&[item, newer]).expect("newest")[0].value.as_deref(), Some("v"));
    }
}
