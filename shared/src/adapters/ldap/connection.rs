//! One multiplexed LDAP connection per adapter: TLS with the system's roots and
//! `AD_CA_FILE`, a simple bind as the service account made once (again after the connection
//! broke), a timeout on every operation and a bound on the operations in flight.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::{Mutex, Semaphore};
use tracing::Instrument;

use super::errors::{self, connection_lost};
use super::settings::{AdSettings, AdTransport};
use crate::ports::DirectoryError;

pub(super) struct Connection {
    settings: AdSettings,
    /// Built on the first connection (reading the system's roots takes a while).
    tls: tokio::sync::OnceCell<Arc<ClientConfig>>,
    /// The bound handle; `None` before the first call and after the connection broke.
    handle: Mutex<Option<Ldap>>,
    permits: Semaphore,
    /// LDAP operations sent (binds included; StartTLS is not counted).
    sent: AtomicU64,
}

impl Connection {
    pub(super) fn new(settings: AdSettings) -> Self {
        let permits = Semaphore::new(settings.max_concurrency.max(1));
        Self { settings, tls: Default::default(), handle: Mutex::new(None), permits, sent: AtomicU64::new(0) }
    }

    pub(super) fn settings(&self) -> &AdSettings {
        &self.settings
    }

    pub(super) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Runs one operation on a clone of the bound handle, under a permit and a timeout. A
    /// connection found broken is dropped, so the next call connects again; an operation
    /// that could not even be handed to the connection (it had just closed) is sent once
    /// more on a new one, as the server never saw it.
    pub(super) async fn run<T, F, Fut>(&self, op: &'static str, dn: &str, call: F) -> Result<T, DirectoryError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, LdapError>>,
    {
        let span = tracing::debug_span!("ldap", op, dn = %dn);
        async {
            let _permit = self.permits.acquire().await.map_err(|_| closed())?;
            for attempt in 0..2 {
                let mut ldap = self.bound().await?;
                ldap.with_timeout(self.settings.timeout);
                self.sent.fetch_add(1, Ordering::Relaxed);
                let answer = call(ldap).await;
                tracing::debug!(ok = answer.is_ok(), attempt, "LDAP operation answered");
                match answer {
                    Ok(value) => return Ok(value),
                    Err(error) if connection_lost(&error) => {
                        self.forget().await;
                        let unsent = matches!(error, LdapError::OpSend { .. });
                        tracing::debug!(%error, attempt, "LDAP connection lost");
                        if !(unsent && attempt == 0) {
                            return Err(errors::from_ldap(error));
                        }
                    }
                    Err(error) => return Err(errors::from_ldap(error)),
                }
            }
            Err(closed())
        }
        .instrument(span)
        .await
    }

    /// Whether a password may be sent: only over TLS (docs/vendors/active-directory.md#password).
    pub(super) fn encrypted(&self) -> bool {
        self.settings.transport.encrypted()
    }

    async fn forget(&self) {
        self.handle.lock().await.take();
    }

    /// The cached handle while its connection lives, else a new connection and bind.
    async fn bound(&self) -> Result<Ldap, DirectoryError> {
        let mut handle = self.handle.lock().await;
        if let Some(ldap) = handle.as_mut()
            && !ldap.is_closed()
        {
            return Ok(ldap.clone());
        }
        let ldap = self.connect().await?;
        *handle = Some(ldap.clone());
        Ok(ldap)
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let settings = &self.settings;
        let mut conn = LdapConnSettings::new().set_conn_timeout(settings.timeout);
        if settings.transport.encrypted() {
            conn = conn.set_config(self.tls_config().await?).set_starttls(settings.transport == AdTransport::StartTls);
        }
        let span = tracing::debug_span!("ldap_bind", url = %settings.url, bind_dn = %settings.bind_dn);
        async {
            let (driver, mut ldap) =
                tokio::time::timeout(settings.timeout, LdapConnAsync::with_settings(conn, &settings.url))
                    .await
                    .map_err(|_| timed_out("connect", settings))?
                    .map_err(errors::from_ldap)?;
            ldap3::drive!(driver);
            self.sent.fetch_add(1, Ordering::Relaxed);
            let result = ldap
                .with_timeout(settings.timeout)
                .simple_bind(&settings.bind_dn, settings.bind_password.expose())
                .await
                .map_err(errors::from_ldap)?;
            if result.rc != errors::SUCCESS {
                let error = errors::from_bind(&result);
                tracing::debug!(%error, "LDAP bind refused");
                return Err(error);
            }
            tracing::debug!("LDAP bind done");
            Ok(ldap)
        }
        .instrument(span)
        .await
    }

    async fn tls_config(&self) -> Result<Arc<ClientConfig>, DirectoryError> {
        let ca_file = self.settings.ca_file.clone();
        self.tls
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || tls_config(ca_file.as_deref()))
                    .await
                    .map_err(|e| DirectoryError::Configuration { message: format!("TLS set-up: {e}") })?
            })
            .await
            .cloned()
    }
}

/// The system's roots and the certificates of `ca_file`; the server's certificate is always
/// verified (name included), with aws-lc-rs, the one crypto provider of the workspace.
pub(super) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, DirectoryError> {
    let configuration = |message: String| DirectoryError::Configuration { message };
    let mut roots = RootCertStore::empty();
    // Unreadable system roots leave the store empty rather than stop: AD_CA_FILE may be all
    // a DC needs.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| configuration(format!("AD_CA_FILE {}: {e}", path.display())))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| configuration(format!("AD_CA_FILE {}: {e}", path.display())))?;
        if certificates.is_empty() {
            return Err(configuration(format!("AD_CA_FILE {}: no PEM certificate in it", path.display())));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| configuration(format!("AD_CA_FILE {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| configuration(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn timed_out(what: &str, settings: &AdSettings) -> DirectoryError {
    DirectoryError::Connection { message: format!("{what} to {} timed out after {:?}", settings.url, settings.timeout) }
}

fn closed() -> DirectoryError {
    DirectoryError::Connection { message: "the LDAP connection closed".into() }
}
