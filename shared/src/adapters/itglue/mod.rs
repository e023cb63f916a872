//! IT Glue API adapter (the [`DocPlatform`] port).
//!
//! Facts (docs/vendors/itglue.md):
//! - Base URL by region: `https://api.itglue.com`, `https://api.eu.itglue.com`,
//!   `https://api.au.itglue.com`; `x-api-key` on every request; JSON:API documents,
//!   `application/vnd.api+json` (required when there is a body).
//! - Resource objects carry a **string** `id` and kebab-case attributes.
//! - Lists page with `page[number]` (1-based) and `page[size]` (at most 1000) and answer
//!   `meta.total-pages` / `meta.total-count`; counting with `page[size]=1` and
//!   `meta.total-count` avoids paging everything.
//! - Flexible assets can only be listed per type (`filter[flexible_asset_type_id]` is
//!   required), so they are counted once per type from `/flexible_asset_types`.
//! - Organizations are deleted with the bulk `DELETE /organizations` and a JSON:API body
//!   (a body on a DELETE); the deletion is asynchronous: the organization may still be
//!   readable for a while.
//! - 3,000 requests per 5 minutes; 429 when over. A wrong key is 403 (401 is listed too).
//!
//! UNCONFIRMED points, and how this client copes (docs/vendors/itglue.md#unconfirmed-points):
//! - `filter[name]` semantics on organizations (exact? substring? case-sensitive?): the
//!   client never trusts it. Name lookups list every organization and compare here,
//!   ignoring case: trusting a case-sensitive filter would miss `LITWARE INC` beside
//!   `Litware Inc` and turn an ambiguous name into the wrong deletion. It costs one request
//!   per 1,000 organizations.
//! - Whether archived configurations (and passwords) are listed without a filter: each is
//!   counted twice, `filter[archived]=false` and `=true`.
//! - The documents route (`/organizations/{id}/relationships/documents`) is not in the
//!   official documentation: when it cannot be read, documents are reported as "not
//!   counted", which the workflow treats as possible dependents (it blocks an unforced
//!   deletion) rather than as zero.
//! - `meta.total-count` beyond the documented lists: when it is missing the client pages
//!   through and counts the records.
//! - Snake-case vs kebab-case filter keys: snake-case, as IT Glue's own PowerShell wrapper
//!   sends them. A filter the server ignored would over-count (account-wide), which blocks
//!   a deletion; it can never make an organization look empty.
//! - `psa-id` / `psa-integration-type` on organizations (documented only as filters;
//!   docs/vendors/itglue.md#unconfirmed-points): read when present, as a string or a number.
//! - Exports (`POST /exports`, `GET /exports/{id}`) are unconfirmed
//!   (docs/vendors/itglue.md#unconfirmed-points); shapes follow IT Glue's developer
//!   documentation as relayed by public wrappers: attributes
//!   `organization-id`, `include-logs`; the record shows `status` (`done` when finished)
//!   and `download-url`. Without an `organization-id` IT Glue exports the whole account,
//!   so an answer naming another organization (or none) is refused. One public wrapper
//!   says exports need a user access token rather than an API key: a refused export stops
//!   the deletion (unless forced without export), it is never skipped silently.
//! - Whether the deletion is finished shows only as the organization no longer being
//!   readable (404); that is what the workflow polls for.
//! - `Retry-After` on 429: honoured when present, otherwise the HTTP layer backs off
//!   exponentially; a rolling five-minute budget keeps the client under the documented
//!   3,000 requests in the first place.

mod client;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod settings;

pub use client::ItGlueClient;
pub(crate) use settings::load as load_settings;
pub use settings::{
    DEFAULT_RATE_LIMIT, ItGlueRegion, ItGlueSettings, RATE_WINDOW, default_http_settings, http_settings,
};

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use self::client::{invalid, numeric_id, parse_export, parse_organization};
use crate::adapters::vendor_http::{VendorError, id_text};
use crate::domain::{DependencyCounts, Export, Organization};
use crate::error::DocError;
use crate::http::{HttpRequest, Retry};
use crate::ports::DocPlatform;

/// One kind of dependent counted, or why it could not be.
enum Counted {
    Count(u64),
    Unknown(String),
}

impl ItGlueClient {
    /// Count one kind; an answer that says "you cannot count this" (not found, refused,
    /// forbidden) is a kind not counted, and a failure to reach IT Glue stops everything.
    async fn count_kind(&self, path: &str, filters: &[(&str, String)], what: &str) -> Result<Counted, DocError> {
        match self.count(path, filters, what).await {
            Ok(n) => Ok(Counted::Count(n)),
            Err(e @ (DocError::NotFound { .. } | DocError::Rejected { .. } | DocError::PermissionDenied { .. })) => {
                Ok(Counted::Unknown(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// A kind counted as `archived=false` plus `archived=true`.
    async fn count_with_archived(&self, path: &str, org: &str, what: &str) -> Result<Counted, DocError> {
        let mut total = 0;
        for archived in ["false", "true"] {
            let filters = [("filter[organization_id]", org.to_string()), ("filter[archived]", archived.to_string())];
            match self.count_kind(path, &filters, what).await? {
                Counted::Count(n) => total += n,
                unknown => return Ok(unknown),
            }
        }
        Ok(Counted::Count(total))
    }
}

#[async_trait]
impl DocPlatform for ItGlueClient {
    async fn organization_by_id(&self, id: &str) -> Result<Option<Organization>, DocError> {
        let id = numeric_id(id, "organization")?;
        let Some(body) = self.api.get(&format!("organizations/{id}"), &[], "organization").await? else {
            return Ok(None);
        };
        let data = body.get("data").ok_or_else(|| invalid("organization: response has no 'data'"))?;
        parse_organization(data).map(Some)
    }

    async fn organizations(&self) -> Result<Vec<Organization>, DocError> {
        self.list("organizations", &[("sort", "id".to_string())], "organizations", parse_organization).await
    }

    async fn organizations_by_name(&self, name: &str) -> Result<Vec<Organization>, DocError> {
        // Compared here, never through filter[name]: see the module comment.
        let wanted = name.trim().to_lowercase();
        Ok(self.organizations().await?.into_iter().filter(|o| o.name.trim().to_lowercase() == wanted).collect())
    }

    async fn dependencies(&self, organization_id: &str) -> Result<DependencyCounts, DocError> {
        let org = numeric_id(organization_id, "organization")?.to_string();
        let by_org = [("filter[organization_id]", org.clone())];
        let mut counts = DependencyCounts::default();
        let mut unknown = BTreeMap::new();
        let mut record = |kind: &str, counted: Counted, slot: &mut u64| match counted {
            Counted::Count(n) => *slot = n,
            Counted::Unknown(why) => {
                unknown.insert(kind.to_string(), why);
            }
        };
        record(
            "configurations",
            self.count_with_archived("configurations", &org, "configurations").await?,
            &mut counts.configurations,
        );
        record("passwords", self.count_with_archived("passwords", &org, "passwords").await?, &mut counts.passwords);
        record("contacts", self.count_kind("contacts", &by_org, "contacts").await?, &mut counts.contacts);
        record("locations", self.count_kind("locations", &by_org, "locations").await?, &mut counts.locations);
        // Nested relationship routes take no filters; this one is UNCONFIRMED (module comment).
        record(
            "documents",
            self.count_kind(&format!("organizations/{org}/relationships/documents"), &[], "documents").await?,
            &mut counts.documents,
        );
        match self.flexible_asset_types().await {
            Ok(types) => {
                for (type_id, type_name) in types {
                    let filters =
                        [("filter[flexible_asset_type_id]", type_id.clone()), ("filter[organization_id]", org.clone())];
                    let label = if type_name.is_empty() { format!("type {type_id}") } else { type_name };
                    match self.count_kind("flexible_assets", &filters, "flexible assets").await? {
                        Counted::Count(0) => {}
                        Counted::Count(n) => {
                            // Two types may share a name: keep both counts apart.
                            let key = if counts.flexible_assets.contains_key(&label) {
                                format!("{label} (type {type_id})")
                            } else {
                                label
                            };
                            counts.flexible_assets.insert(key, n);
                        }
                        Counted::Unknown(why) => {
                            unknown.insert(format!("flexible assets: {label}"), why);
                        }
                    }
                }
            }
            Err(e @ (DocError::NotFound { .. } | DocError::Rejected { .. } | DocError::PermissionDenied { .. })) => {
                unknown.insert("flexible assets".into(), e.to_string());
            }
            Err(e) => return Err(e),
        }
        counts.unknown = unknown;
        Ok(counts)
    }

    async fn request_export(&self, organization_id: &str) -> Result<Export, DocError> {
        let org = numeric_id(organization_id, "organization")?;
        let body = json!({
            "data": {
                "type": "exports",
                // Logs go with it: after the deletion the export is the only record left.
                "attributes": { "organization-id": org, "include-logs": true }
            }
        });
        // A POST creates an export: it is repeated only after a 429 ("not processed").
        let request = self.with_body(Method::POST, "exports", &body, Retry::OnlyWhenThrottled)?;
        let body =
            self.api.write(request, "export request").await?.ok_or_else(|| invalid("export: body is not JSON"))?;
        let export = parse_export(body.get("data").ok_or_else(|| invalid("export: response has no 'data'"))?)?;
        if export.organization_id != org.to_string() {
            return Err(invalid(format!(
                "IT Glue created export {} for organization '{}', not for {org}; it is not used",
                export.id, export.organization_id
            )));
        }
        Ok(export)
    }

    async fn export(&self, export_id: &str) -> Result<Export, DocError> {
        let id = numeric_id(export_id, "export")?;
        let body = self.get_found(&format!("exports/{id}"), &[], "export").await?;
        parse_export(body.get("data").ok_or_else(|| invalid("export: response has no 'data'"))?)
    }

    /// The link is a bearer link (docs/vendors/itglue.md#exports): it must be https (loopback
    /// http for the sandbox) and is learned by the redactor before it is used, so neither
    /// its path nor its query reaches a log line. Only a link on IT Glue's own API origin
    /// gets the API key; a link anywhere else (a storage host) is fetched with no
    /// credential. No redirect is followed on either path (the HTTP layer's rule).
    async fn download_export(&self, export: &Export, max_bytes: usize) -> Result<Vec<u8>, DocError> {
        let link = export
            .download_url
            .as_deref()
            .ok_or_else(|| invalid(format!("export {} has no download link", export.id)))?;
        let url = crate::http::origin::secure_url("the export's download-url", link)
            .map_err(|_| invalid(format!("export {}: its download link is not an https URL", export.id)))?;
        let redactor = self.http().redactor();
        redactor.learn(link);
        redactor.learn(url.path());
        if let Some(query) = url.query() {
            redactor.learn(query);
        }
        let request = HttpRequest::new(Method::GET, url.clone()).max_body(max_bytes);
        let response = if crate::http::origin::same_origin(self.api.base(), &url) {
            self.api.send(request).await?
        } else {
            self.downloads.send(request).await.map_err(<DocError as VendorError>::transport)?
        };
        if !response.is_success() {
            return Err(self.api.refusal(&response, "export download", crate::adapters::vendor_http::Access::Read));
        }
        Ok(response.body)
    }

    async fn delete_organization(&self, organization_id: &str) -> Result<(), DocError> {
        let org = numeric_id(organization_id, "organization")?;
        let body = json!({ "data": [ { "type": "organizations", "attributes": { "id": org } } ] });
        // Marking an organization for deletion twice is harmless, so a broken connection
        // may be retried; a 404 on the retry means the first attempt went through and the
        // organization is already gone (the workflow checks).
        let request = self.with_body(Method::DELETE, "organizations", &body, Retry::Idempotent)?;
        let answer = self.api.write(request, "organization deletion").await?;
        // 200 lists the organizations that will be deleted; ours should be among them.
        if let Some(answer) = answer
            && let Some(listed) = answer.get("data").and_then(Value::as_array)
            && !listed.iter().any(|o| id_text(o.get("id")).as_deref() == Some(org.to_string().as_str()))
        {
            tracing::warn!(org_id = org, "IT Glue accepted the deletion but did not list the organization");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_ids() {
        assert_eq!(ItGlueRegion::parse("EU").map(ItGlueRegion::base_url), Some("https://api.eu.itglue.com"));
        assert_eq!(ItGlueRegion::parse(""), Some(ItGlueRegion::Us));
        assert_eq!(ItGlueRegion::parse("uk"), None);
        assert!(numeric_id("12", "organization").is_ok());
        for bad in ["0", "-1", "12 or 1=1", "../x", ""] {
            assert!(matches!(numeric_id(bad, "organization"), Err(DocError::InvalidId { .. })), "{bad}");
        }
    }
}
