//! The approval page: `GET /approvals/{token}` shows the request, `POST /approvals/{token}`
//! (form-encoded `name` and `decision=approve|reject`) decides. Plain HTML with its one
//! inline style and no script, no external asset; every value escaped. Statuses from the
//! one table (`ErrorCode::http_status`): unknown 404, expired 410, decided 409.

use crate::html::escape;
use std::fmt::Write as _;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::approval::{ApprovalDeps, ApprovalError, DecisionRequest, decide, view};
use crate::domain::{ApprovalRecord, ApprovalVerdict, iso8601};

/// Largest form body read (a name and a button).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;\
line-height:1.45;color:#111}h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;text-align:left}\
.count{font-weight:bold}.note{background:#f4f4f4;padding:.6rem}button{font-size:1rem;padding:.4rem 1.2rem;margin-right:1rem}\
input{font-size:1rem;padding:.3rem;width:20rem}";

/// An HTTP answer of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// The headers every answer carries: no caching (the page holds a credential in its URL),
/// no referrer (so the token never leaves in one), and a CSP that allows nothing but the
/// page's own style (by hash) and posting the form back to itself.
pub fn security_headers() -> Vec<(&'static str, String)> {
    let style_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    vec![
        ("content-type", "text/html; charset=utf-8".into()),
        (
            "content-security-policy",
            format!(
                "default-src 'none'; style-src 'sha256-{style_hash}'; form-action 'self'; base-uri 'none'; \
                 frame-ancestors 'none'"
            ),
        ),
        ("cache-control", "no-store".into()),
        ("referrer-policy", "no-referrer".into()),
        ("x-content-type-options", "nosniff".into()),
        ("x-frame-options", "DENY".into()),
    ]
}

/// Answer one request to `path` (`…/approvals/{token}`).
pub async fn handle(deps: ApprovalDeps<'_>, method: &str, path: &str, body: &[u8]) -> PageResponse {
    let Some(token) = path.rsplit_once("/approvals/").map(|(_, token)| token.trim_end_matches('/')) else {
        return refusal_page(&ApprovalError::NotFound);
    };
    match method.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" => match view(deps, token).await {
            Ok((record, stored)) => answer(200, &approval_form(&record, &stored.recipient)),
            Err(e) => refusal_page(&e),
        },
        "POST" => {
            if body.len() > MAX_FORM_BYTES {
                return refusal_page(&ApprovalError::invalid("the form is too large"));
            }
            let request = match read_form(body) {
                Ok(request) => request,
                Err(e) => return refusal_page(&e),
            };
            match decide(deps, token, &request).await {
                Ok(done) => answer(200, &confirmation(&done.record, &done.decision)),
                Err(e) => refusal_page(&e),
            }
        }
        _ => {
            let mut page = answer(405, &shell("Not allowed", "<p>Open the link from your e-mail.</p>"));
            page.headers.push(("allow", "GET, POST".into()));
            page
        }
    }
}

fn read_form(body: &[u8]) -> Result<DecisionRequest, ApprovalError> {
    let mut name = String::new();
    let mut verdict = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "name" => name = value.into_owned(),
            "decision" => {
                verdict = match value.as_ref() {
                    "approve" => Some(ApprovalVerdict::Approved),
                    "reject" => Some(ApprovalVerdict::Rejected),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    let verdict = verdict.ok_or_else(|| ApprovalError::invalid("choose Approve or Reject"))?;
    Ok(DecisionRequest { verdict, typed_name: name })
}

fn answer(status: u16, body: &str) -> PageResponse {
    PageResponse { status, headers: security_headers(), body: body.to_string() }
}

/// A page that says why nothing happened, with the status of the error's code.
pub fn refusal_page(error: &ApprovalError) -> PageResponse {
    let (title, text) = match error {
        ApprovalError::NotFound => {
            ("Approval link not found", "This link is not known. Check that it was copied whole.")
        }
        ApprovalError::Expired { .. } => ("Approval expired", "This request can no longer be approved."),
        ApprovalError::AlreadyDecided { .. } => ("Already decided", "This request was already decided."),
        ApprovalError::ApproverIsRequester { .. } => {
            ("Another approver is needed", "The person who asked cannot approve their own request.")
        }
        ApprovalError::InvalidInput { .. } => ("Not decided", "The form was not complete."),
        _ => ("Something went wrong", "Nothing was decided unless said below. Try again in a moment."),
    };
    let body = format!(
        "<p>{}</p><p class=\"note\">{}</p><p>Nothing was changed by this visit.</p>",
        escape(text),
        escape(&error.to_string())
    );
    answer(error.code().http_status(), &shell(title, &body))
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\">\
         <title>{t} – Offramp</title><style>{STYLE}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

fn approval_form(record: &ApprovalRecord, recipient: &str) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<table><tr><th>Client</th><td id=\"client\">{}</td></tr><tr><th>Requested by</th><td>{}</td></tr>\
         <tr><th>Reason</th><td>{}</td></tr><tr><th>Expires</th><td>{}</td></tr><tr><th>Your link, for</th><td>{}</td></tr></table>",
        escape(&format!("{} (#{})", record.client.name, record.client.id)),
        escape(&record.requested_by),
        escape(record.reason.as_deref().unwrap_or("(none given)")),
        escape(&iso8601(record.expires_at)),
        escape(recipient),
    );
    body.push_str(&plans_html(record));
    let _ = write!(
        body,
        "<h2>Your decision</h2><form method=\"post\" action=\"\"><p><label for=\"name\">Your name</label><br>\
         <input id=\"name\" name=\"name\" required maxlength=\"200\" autocomplete=\"name\"></p>\
         <p><button type=\"submit\" name=\"decision\" value=\"approve\" id=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"reject\" id=\"reject\">Reject</button></p></form>\
         <p class=\"note\">Approving lets Offramp apply exactly the plans above (plan hashes {}); if anything changed \
         since, the run stops and asks again.</p>",
        escape(
            &record.plans.iter().map(|p| format!("{}: {}", p.step, short(&p.plan_hash))).collect::<Vec<_>>().join(", ")
        )
    );
    shell("Approve the offboarding", &body)
}

/// The first 12 characters of a plan hash (after its `sha256:` label): enough to compare.
fn short(hash: &str) -> &str {
    let hash = hash.strip_prefix("sha256:").unwrap_or(hash);
    hash.get(..12).unwrap_or(hash)
}

/// Every planned change grouped by system: per step, the counts first, then the lists.
fn plans_html(record: &ApprovalRecord) -> String {
    let mut systems: Vec<&str> = record.plans.iter().map(|p| p.system.as_str()).collect();
    systems.dedup();
    let mut html = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for system in systems.into_iter().filter(|s| seen.insert(*s)) {
        let _ = write!(html, "<h2>{}</h2>", escape(system));
        for plan in record.plans.iter().filter(|p| p.system == system) {
            let _ = write!(html, "<h3>{}</h3>", escape(&plan.step.replace('_', " ")));
            if let Some(counts) = plan.summary.get("counts").and_then(|c| c.as_object()) {
                html.push_str("<table>");
                for (name, count) in counts {
                    let _ = write!(
                        html,
                        "<tr><th>{}</th><td class=\"count\">{}</td></tr>",
                        escape(&name.replace('_', " ")),
                        escape(&plain(count))
                    );
                }
                html.push_str("</table>");
            }
            if let Some(lists) = plan.summary.get("items").and_then(|c| c.as_object()) {
                for (name, items) in lists {
                    let _ = write!(html, "<h4>{}</h4><ul>", escape(&name.replace('_', " ")));
                    for item in items.as_array().into_iter().flatten() {
                        let _ = write!(html, "<li>{}</li>", escape(&plain(item)));
                    }
                    html.push_str("</ul>");
                }
            }
        }
    }
    html
}

/// A JSON value as text: strings without their quotes.
fn plain(value: &serde_json::Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

fn confirmation(record: &ApprovalRecord, decision: &crate::domain::ApprovalDecision) -> String {
    let (title, what) = match decision.verdict {
        ApprovalVerdict::Approved => ("Approved", "approved: the offboarding goes on with the plans you saw"),
        _ => ("Rejected", "rejected: nothing will be changed"),
    };
    let body = format!(
        "<p id=\"outcome\">The offboarding of {} was {}.</p><p>Recorded as {} at {}.</p>",
        escape(&record.client.name),
        escape(what),
        escape(&decision.approved_by()),
        escape(&iso8601(decision.decided_at)),
    );
    shell(title, &body)
}

/// The page behind API Gateway's HTTP API (payload 2.0): the event in, the proxy answer out.
pub async fn handle_http_api(deps: ApprovalDeps<'_>, event: serde_json::Value) -> serde_json::Value {
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    let response = match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
        Err(_) => refusal_page(&ApprovalError::invalid("not an API Gateway HTTP API event")),
        Ok(request) => {
            let body = request.body.unwrap_or_default();
            let body = if request.is_base64_encoded {
                base64::engine::general_purpose::STANDARD.decode(body.as_bytes()).unwrap_or_default()
            } else {
                body.into_bytes()
            };
            let path = request.raw_path.unwrap_or_default();
            handle(deps, request.request_context.http.method.as_str(), &path, &body).await
        }
    };
    let headers: serde_json::Map<String, serde_json::Value> =
        response.headers.into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect();
    serde_json::json!({"statusCode": response.status, "headers": headers, "body": response.body, "isBase64Encoded": false})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(escape("<script>\"x\"&'y'</script>"), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
    }

    #[test]
    fn the_csp_allows_only_the_pages_own_style() {
        let headers = security_headers();
        let csp = &headers.iter().find(|(k, _)| *k == "content-security-policy").unwrap().1;
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}
