//! One secret per vendor integration: credentials are looked up in the secret of the
//! integration their name belongs to, so each Lambda function's role can be allowed to read
//! only the secrets it needs (docs/architecture.md#credentials):
//!
//! | setting | integration | keys it holds |
//! |---|---|---|
//! | `OFFRAMP_SECRET_PSA` | the PSA | `CONNECTWISE_*`, `AUTOTASK_*`, `HALO_*` |
//! | `OFFRAMP_SECRET_ITGLUE` | IT Glue | `ITGLUE_*` |
//! | `OFFRAMP_SECRET_NOTIFIER` | the notifier | `GRAPH_*`, `OFFRAMP_WEBHOOK_URL` |
//! | `OFFRAMP_SECRET_M365` | the customer tenants' Microsoft 365 and on-premises AD (user offboarding, rollback) | `MS_CLIENT_ID`, `MS_CLIENT_SECRET`, `AD_BIND_PASSWORD` |
//! | `OFFRAMP_SECRET_ID` | any key no secret above holds (one secret for everything, as before) | all |
//!
//! A key is never looked up in another integration's secret: a function whose role may not
//! read the IT Glue secret is not configured with it, and asks nothing of it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::SecretError;
use crate::ports::SecretStore;
use crate::secret::SecretString;

/// A vendor integration with a secret of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integration {
    Psa,
    ItGlue,
    Notifier,
    /// The MSP's multi-tenant app that acts in customer tenants (user offboarding), and the
    /// on-premises AD bind account (`AD_BIND_PASSWORD`): their own secret, because they can
    /// disable any customer's users, which no function but user offboarding and the
    /// rollback needs.
    M365,
}

impl Integration {
    pub const ALL: [Integration; 4] = [Integration::Psa, Integration::ItGlue, Integration::Notifier, Integration::M365];

    /// The setting that names this integration's secret (name or ARN).
    pub fn setting(self) -> &'static str {
        match self {
            Integration::Psa => "OFFRAMP_SECRET_PSA",
            Integration::ItGlue => "OFFRAMP_SECRET_ITGLUE",
            Integration::Notifier => "OFFRAMP_SECRET_NOTIFIER",
            Integration::M365 => "OFFRAMP_SECRET_M365",
        }
    }

    /// The integration a credential's setting name belongs to.
    pub fn of_key(key: &str) -> Option<Integration> {
        const PSA: [&str; 3] = ["CONNECTWISE_", "AUTOTASK_", "HALO_"];
        if PSA.iter().any(|prefix| key.starts_with(prefix)) {
            Some(Integration::Psa)
        } else if key.starts_with("ITGLUE_") {
            Some(Integration::ItGlue)
        } else if key.starts_with("GRAPH_") || key == "OFFRAMP_WEBHOOK_URL" {
            Some(Integration::Notifier)
        } else if key.starts_with("MS_CLIENT_") || key.starts_with("AD_") {
            Some(Integration::M365)
        } else {
            None
        }
    }
}

/// Looks each key up in its integration's store, else in the shared one.
#[derive(Default)]
pub struct RoutedSecretStore {
    routes: Vec<(Integration, Arc<dyn SecretStore>)>,
    /// `OFFRAMP_SECRET_ID`: keys of integrations without a secret of their own.
    shared: Option<Arc<dyn SecretStore>>,
}

impl std::fmt::Debug for RoutedSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let routes: Vec<Integration> = self.routes.iter().map(|(integration, _)| *integration).collect();
        f.debug_struct("RoutedSecretStore").field("routes", &routes).field("shared", &self.shared.is_some()).finish()
    }
}

impl RoutedSecretStore {
    /// `integration`'s keys are read from `store` (and only from it).
    pub fn route(mut self, integration: Integration, store: Arc<dyn SecretStore>) -> Self {
        self.routes.retain(|(existing, _)| *existing != integration);
        self.routes.push((integration, store));
        self
    }

    /// Keys whose integration has no store of its own are read from `store`.
    pub fn shared(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.shared = Some(store);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.shared.is_none()
    }

    fn store_for(&self, key: &str) -> Option<&Arc<dyn SecretStore>> {
        let integration = Integration::of_key(key);
        self.routes
            .iter()
            .find(|(candidate, _)| Some(*candidate) == integration)
            .map(|(_, store)| store)
            .or(self.shared.as_ref())
    }

    fn stores(&self) -> impl Iterator<Item = &Arc<dyn SecretStore>> {
        self.routes.iter().map(|(_, store)| store).chain(self.shared.iter())
    }
}

#[async_trait]
impl SecretStore for RoutedSecretStore {
    async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        match self.store_for(key) {
            Some(store) => store.get(key).await,
            None => Ok(None),
        }
    }

    /// Every store forgets its cache: the caller does not say which credential was refused.
    /// Refusals are rare, and a store re-reads only when next asked.
    async fn refresh(&self) {
        for store in self.stores() {
            store.refresh().await;
        }
    }

    fn rotates(&self) -> bool {
        self.stores().any(|store| store.rotates())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A store that answers from a map and records every key asked of it.
    struct Recording {
        values: HashMap<&'static str, &'static str>,
        asked: Mutex<Vec<String>>,
    }

    impl Recording {
        fn new(values: &[(&'static str, &'static str)]) -> Arc<Self> {
            Arc::new(Self { values: values.iter().copied().collect(), asked: Mutex::new(Vec::new()) })
        }
        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl SecretStore for Recording {
        async fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
            self.asked.lock().unwrap().push(key.to_string());
            Ok(self.values.get(key).map(|v| SecretString::new(*v)))
        }
    }

    #[test]
    fn every_credential_setting_belongs_to_one_integration() {
        for (key, integration) in [
            ("CONNECTWISE_PRIVATE_KEY", Some(Integration::Psa)),
            ("AUTOTASK_SECRET", Some(Integration::Psa)),
            ("HALO_CLIENT_SECRET", Some(Integration::Psa)),
            ("ITGLUE_API_KEY", Some(Integration::ItGlue)),
            ("GRAPH_CLIENT_SECRET", Some(Integration::Notifier)),
            ("OFFRAMP_WEBHOOK_URL", Some(Integration::Notifier)),
            ("MS_CLIENT_ID", Some(Integration::M365)),
            ("MS_CLIENT_SECRET", Some(Integration::M365)),
            ("AD_BIND_PASSWORD", Some(Integration::M365)),
            ("MS_LOGIN_URL", None),
            ("OFFRAMP_AUDIT_TABLE", None),
        ] {
            assert_eq!(Integration::of_key(key), integration, "{key}");
        }
    }

    #[tokio::test]
    async fn a_key_is_read_only_from_its_integrations_secret() {
        let psa = Recording::new(&[("CONNECTWISE_PRIVATE_KEY", "cw"), ("ITGLUE_API_KEY", "misplaced")]);
        let notifier = Recording::new(&[("GRAPH_CLIENT_SECRET", "graph")]);
        let store = RoutedSecretStore::default()
            .route(Integration::Psa, psa.clone())
            .route(Integration::Notifier, notifier.clone());
        assert_eq!(store.get("CONNECTWISE_PRIVATE_KEY").await.unwrap().unwrap().expose(), "cw");
        assert_eq!(store.get("GRAPH_CLIENT_SECRET").await.unwrap().unwrap().expose(), "graph");
        // No IT Glue secret is configured, and the PSA's secret is not asked for IT Glue's key.
        assert!(store.get("ITGLUE_API_KEY").await.unwrap().is_none());
        assert_eq!(psa.asked(), ["CONNECTWISE_PRIVATE_KEY"]);
        assert_eq!(notifier.asked(), ["GRAPH_CLIENT_SECRET"]);
    }

    #[tokio::test]
    async fn the_shared_secret_holds_what_no_integration_secret_does() {
        let psa = Recording::new(&[("HALO_CLIENT_SECRET", "own")]);
        let shared = Recording::new(&[("HALO_CLIENT_SECRET", "shared"), ("ITGLUE_API_KEY", "itg")]);
        let store = RoutedSecretStore::default().route(Integration::Psa, psa.clone()).shared(shared.clone());
        assert_eq!(store.get("HALO_CLIENT_SECRET").await.unwrap().unwrap().expose(), "own");
        assert_eq!(store.get("ITGLUE_API_KEY").await.unwrap().unwrap().expose(), "itg");
        assert_eq!(shared.asked(), ["ITGLUE_API_KEY"]);
    }
}
