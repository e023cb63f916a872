//! Exchange Online over InvokeCommand (docs/vendors/exchange-online.md): [`ExchangeMailboxes`]
//! implements [`crate::ports::Mailboxes`] for the customer tenants of user offboarding (issue 14).
//!
//! `POST {EXO_URL}/adminapi/beta/{tenant}/InvokeCommand` with `{"CmdletInput":
//! {"CmdletName", "Parameters"}}` and the tenant's Exchange-scoped token (never the Graph
//! one). UNCONFIRMED (docs/vendors/exchange-online.md#unconfirmed-points): the endpoint is
//! unsupported by Microsoft; the routing hint's format; statuses and codes of errors (read
//! by [`crate::adapters::graph::errors`], which also looks at the message); the no-op warning
//! text: any `@adminapi.warnings` on a 2xx is taken as success and only logged.

mod mailboxes;

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::adapters::graph::M365Settings;
use crate::adapters::graph::errors::refusal;
use crate::adapters::graph::token::{Resource, TenantTokens};
use crate::http::{HttpClient, HttpRequest, HttpSettings, Redactor, Retry};
use crate::ports::{AutoReply, AutoReplyState, DirectoryError, MailboxInfo, MailboxType};

/// The system mailbox tools name as the routing hint of tenant-wide calls
/// (docs/vendors/exchange-online.md#endpoint; format UNCONFIRMED).
const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";

/// Exchange Online of any customer tenant where the app has `Exchange.ManageAsApp` and a role.
pub struct ExchangeMailboxes {
    http: HttpClient,
    exo_url: String,
    tokens: Arc<TenantTokens>,
}

type Params = Map<String, Value>;

fn params(pairs: Value) -> Params {
    match pairs {
        Value::Object(map) => map,
        _ => Params::new(),
    }
}

impl ExchangeMailboxes {
    pub fn new(settings: &M365Settings, http: HttpSettings) -> Result<Self, DirectoryError> {
        settings.check()?;
        let login = M365Settings::url("MS_LOGIN_URL", &settings.login_url, &[])?;
        M365Settings::url("EXO_URL", &settings.exo_url, &[])?;
        let tokens =
            Arc::new(TenantTokens::new(login, settings.client_id.trim().into(), settings.client_secret.clone()));
        let redactor = Redactor::new([settings.client_secret.expose().to_string()]);
        let http = HttpClient::new("exchange-online", http, redactor)
            .map_err(|e| DirectoryError::Configuration { message: e.to_string() })?;
        Ok(Self { http, exo_url: settings.exo_url.clone(), tokens })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Read `MS_CLIENT_SECRET` through `store` before each token request (a rotated secret
    /// is picked up without a restart).
    pub fn with_secret_store(self, store: Arc<dyn crate::ports::SecretStore>) -> Self {
        self.tokens.read_secret_from(store);
        self
    }

    /// Runs `cmdlet` in `tenant`: its objects. Reads and `Set-*` are retried like any
    /// idempotent request; `Add-*`/`Remove-*` only on 429 (a repeat would be refused as
    /// already there / not found).
    async fn invoke(&self, tenant: &str, cmdlet: &str, parameters: Params) -> Result<Vec<Value>, DirectoryError> {
        let url = M365Settings::url("EXO_URL", &self.exo_url, &["adminapi", "beta", tenant, "InvokeCommand"])?;
        let body = json!({ "CmdletInput": { "CmdletName": cmdlet, "Parameters": parameters } });
        let retry = if cmdlet.starts_with("Get-") || cmdlet.starts_with("Set-") {
            Retry::Idempotent
        } else {
            Retry::OnlyWhenThrottled
        };
        let anchor = format!("APP:{SYSTEM_MAILBOX}@{tenant}");
        let request = HttpRequest::new(Method::POST, url)
            .json_body(&body)
            .retry(retry)
            .header("accept", "application/json")
            .header("x-anchormailbox", &anchor);
        let response = self.tokens.send(&self.http, tenant, Resource::Exchange, request).await?;
        if !response.is_success() {
            return Err(refusal(&self.http, cmdlet, &response));
        }
        let body = crate::adapters::graph::read_json_body(&response)?;
        if let Some(warnings) = body.get("@adminapi.warnings").and_then(Value::as_array).filter(|w| !w.is_empty()) {
            // The "no settings have been modified" warning: the state is already the one asked for.
            tracing::info!(cmdlet, warnings = warnings.len(), "Exchange answered with a warning; nothing to change");
        }
        Ok(body["value"].as_array().cloned().unwrap_or_default())
    }

    async fn set_mailbox(&self, tenant: &str, mailbox: &str, settings: Value) -> Result<(), DirectoryError> {
        let mut p = params(settings);
        p.insert("Identity".into(), json!(mailbox));
        self.invoke(tenant, "Set-Mailbox", p).await.map(drop)
    }

    async fn member(&self, tenant: &str, verb: &str, group: &str, member: &str) -> Result<(), DirectoryError> {
        // The app manages no group: without the bypass Exchange refuses the change.
        let p = params(json!({ "Identity": group, "Member": member, "BypassSecurityGroupManagerCheck": true }));
        self.invoke(tenant, &format!("{verb}-DistributionGroupMember"), p).await.map(drop)
    }
}

fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

fn flag(value: &Value, name: &str) -> bool {
    value.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn parse_mailbox(value: &Value) -> MailboxInfo {
    let kind = match value.get("RecipientTypeDetails").and_then(Value::as_str) {
        Some("UserMailbox") => MailboxType::User,
        Some("SharedMailbox") => MailboxType::Shared,
        _ => MailboxType::Other,
    };
    MailboxInfo {
        identity: text(value, "UserPrincipalName").or_else(|| text(value, "Identity")).unwrap_or_default(),
        kind,
        hidden_from_address_lists: flag(value, "HiddenFromAddressListsEnabled"),
        forwarding_address: text(value, "ForwardingAddress"),
        forwarding_smtp_address: text(value, "ForwardingSmtpAddress"),
        deliver_to_mailbox_and_forward: flag(value, "DeliverToMailboxAndForward"),
        dir_synced: flag(value, "IsDirSynced"),
    }
}

fn parse_auto_reply(value: &Value) -> AutoReply {
    let state = match value.get("AutoReplyState").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("enabled") => AutoReplyState::Enabled,
        Some("scheduled") => AutoReplyState::Scheduled,
        _ => AutoReplyState::Disabled,
    };
    AutoReply {
        state,
        internal_message: text(value, "InternalMessage").unwrap_or_default(),
        external_message: text(value, "ExternalMessage").unwrap_or_default(),
        external_audience: text(value, "ExternalAudience").unwrap_or_else(|| "None".into()),
        start: text(value, "StartTime"),
        end: text(value, "EndTime"),
    }
}

fn not_found(what: &str, identity: &str) -> DirectoryError {
    DirectoryError::NotFound { code: String::new(), message: format!("{what} {identity}: Exchange answered no object") }
}
