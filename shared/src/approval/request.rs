//! Asking for an approval: store the request and its token hashes, send each approver their
//! link, note it on the ticket, record it in the audit trail.

use crate::approval::{ApprovalDeps, ApprovalError, ApprovalRequest, IssuedApproval, tokens};
use crate::domain::{
    ApprovalRecord, ApprovalTokenRecord, GLOBAL_SCOPE, Notification, OperationEvent, OperationEventKind, TicketNote,
    expiry_after, iso8601,
};
use crate::workflows::org_settings::{APPROVER_MUST_DIFFER, APPROVERS, looks_like_email};

/// Longest an approval may wait: Step Functions' own limit on a task is a year.
const MAX_EXPIRY: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// Store the request, send the links, note the ticket, audit it. Nothing is sent when the
/// request is refused; a failed e-mail is reported in `undelivered` (the others went out),
/// and the request fails only if no approver could be reached.
pub async fn request_approval(
    deps: ApprovalDeps<'_>,
    request: ApprovalRequest,
) -> Result<IssuedApproval, ApprovalError> {
    validate(deps, &request)?;
    let approvers = approvers(deps, &request).await?;
    let must_differ = approver_must_differ(deps, &request.psa, &request.client.id).await?;
    let now = crate::domain::now();
    let expires_at = expiry_after(now, chrono::Duration::from_std(request.expires_in).unwrap_or(chrono::Duration::MAX));
    let record = ApprovalRecord {
        approval_id: uuid::Uuid::now_v7().to_string(),
        parent_operation_id: request.parent_operation_id.clone(),
        psa: request.psa.clone(),
        client: request.client.clone(),
        requested_by: request.requested_by.clone(),
        reason: request.reason.clone(),
        plans: request.plans.clone(),
        approvers: approvers.clone(),
        created_at: now,
        expires_at,
        callback: request.callback.clone(),
        ticket_id: request.ticket_id.clone(),
        approver_must_differ: must_differ,
        decision: None,
    };
    let mut links = Vec::new();
    let mut token_records = Vec::new();
    for recipient in &approvers {
        let token = tokens::new_token()?;
        token_records.push(ApprovalTokenRecord {
            token_hash: tokens::token_hash(token.expose()),
            approval_id: record.approval_id.clone(),
            recipient: recipient.clone(),
            expires_at,
        });
        links.push((recipient.clone(), format!("{}/approvals/{}", deps.config.base_url, token.expose())));
    }
    deps.store.create_approval(&record, &token_records).await?;
    let detail = serde_json::json!({
        "approval_id": record.approval_id, "approvers": approvers, "requested_by": record.requested_by,
        "expires_at": iso8601(expires_at), "plan_hashes": record.plan_hashes(), "approver_must_differ": must_differ,
    });
    deps.audit
        .append_event(&OperationEvent::new(&record.parent_operation_id, OperationEventKind::ApprovalRequested, detail))
        .await?;
    let undelivered = send_links(deps, &record, &links).await;
    if !links.is_empty() && undelivered.len() == links.len() && deps.notifier.is_some() {
        return Err(ApprovalError::invalid(format!(
            "no approver could be e-mailed (first error: {}); the approval {} waits unseen until it expires",
            undelivered[0].1, record.approval_id
        )));
    }
    note_ticket(deps, &record).await;
    Ok(IssuedApproval { approval_id: record.approval_id, links, expires_at, undelivered })
}

fn validate(deps: ApprovalDeps<'_>, request: &ApprovalRequest) -> Result<(), ApprovalError> {
    if request.plans.is_empty() {
        return Err(ApprovalError::invalid("an approval needs at least one planned step"));
    }
    if request.plans.iter().any(|p| p.plan_hash.trim().is_empty() || p.step.trim().is_empty()) {
        return Err(ApprovalError::invalid("every planned step needs its step name and plan_hash"));
    }
    if request.expires_in.is_zero() || request.expires_in > MAX_EXPIRY {
        return Err(ApprovalError::invalid("expires_in must be more than zero and at most 365 days"));
    }
    let base = url::Url::parse(&deps.config.base_url).map_err(|_| {
        ApprovalError::invalid("OFFRAMP_APPROVAL_BASE_URL is not set to the approval page's address (https://…)")
    })?;
    let loopback = matches!(base.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if base.scheme() != "https" && !(base.scheme() == "http" && loopback) {
        return Err(ApprovalError::invalid(
            "OFFRAMP_APPROVAL_BASE_URL must be https (http only on loopback, for tests)",
        ));
    }
    Ok(())
}

/// The request's approvers, else the client's `approvers` setting (client, then global),
/// else the MSP default (`OFFRAMP_APPROVERS`). Each must be an e-mail address: it is where
/// the link goes.
async fn approvers(deps: ApprovalDeps<'_>, request: &ApprovalRequest) -> Result<Vec<String>, ApprovalError> {
    let mut named = request.approvers.clone();
    if named.is_empty()
        && let Some(value) = setting(deps, &request.psa, &request.client.id, APPROVERS).await?
    {
        named = value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect();
    }
    if named.is_empty() {
        named = deps.config.default_approvers.clone();
    }
    named.sort_by_key(|a| a.to_ascii_lowercase());
    named.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    if named.is_empty() {
        return Err(ApprovalError::invalid(
            "no approvers: set the client's `approvers` setting or OFFRAMP_APPROVERS (comma-separated e-mail addresses)",
        ));
    }
    if let Some(bad) = named.iter().find(|a| !looks_like_email(a)) {
        return Err(ApprovalError::invalid(format!("approver {bad:?} is not an e-mail address")));
    }
    Ok(named)
}

/// The client's value of `key`, else the global one.
async fn setting(
    deps: ApprovalDeps<'_>,
    psa: &str,
    client_id: &str,
    key: &str,
) -> Result<Option<String>, ApprovalError> {
    for scope in [client_id, GLOBAL_SCOPE] {
        if let Some(value) = deps.settings.get_setting(psa, scope, key).await?.and_then(|r| r.value) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

async fn approver_must_differ(deps: ApprovalDeps<'_>, psa: &str, client_id: &str) -> Result<bool, ApprovalError> {
    Ok(match setting(deps, psa, client_id, APPROVER_MUST_DIFFER).await? {
        Some(value) => value.trim().eq_ignore_ascii_case("true"),
        None => deps.config.approver_must_differ,
    })
}

/// One message per approver, each with its own link. Returns the failures (recipient, why).
async fn send_links(
    deps: ApprovalDeps<'_>,
    record: &ApprovalRecord,
    links: &[(String, String)],
) -> Vec<(String, String)> {
    let Some(notifier) = deps.notifier else { return Vec::new() };
    let mut failed = Vec::new();
    for (recipient, link) in links {
        let message = Notification {
            to: vec![recipient.clone()],
            subject: format!("Approval needed: offboarding of {}", record.client.name),
            text: format!(
                "{} asks you to approve the offboarding of {}.\nReason: {}\n\nReview the planned changes and approve or \
                 reject them here (this link is yours alone; it works once and expires {}):\n{link}\n",
                record.requested_by,
                record.client.name,
                record.reason.as_deref().unwrap_or("(none given)"),
                iso8601(record.expires_at),
            ),
        };
        if let Err(e) = notifier.send(&message).await {
            // The message names the recipient, never the link (it holds the token).
            tracing::warn!(approval_id = %record.approval_id, recipient = %recipient, error = %e, "approval e-mail not sent");
            failed.push((recipient.clone(), e.to_string()));
        }
    }
    failed
}

/// "Approval requested" on the client's ticket: who asked, who may approve, until when.
/// Never a link: the note is read by everyone with access to the ticket.
async fn note_ticket(deps: ApprovalDeps<'_>, record: &ApprovalRecord) {
    let (Some(psa), Some(ticket_id)) = (deps.psa, record.ticket_id.as_deref()) else { return };
    let steps: Vec<&str> = record.plans.iter().map(|p| p.step.as_str()).collect();
    let note = TicketNote {
        title: "Offramp: approval requested".into(),
        text: format!(
            "{} asked for approval of the offboarding of {} ({}). Approvers: {}. The request expires {}. \
             Approval {} under operation {}.",
            record.requested_by,
            record.client.name,
            steps.join(", "),
            record.approvers.join(", "),
            iso8601(record.expires_at),
            record.approval_id,
            record.parent_operation_id,
        ),
    };
    if let Err(e) = psa.add_ticket_note(ticket_id, &note).await {
        tracing::warn!(approval_id = %record.approval_id, ticket_id, error = %e, "approval note not written on the ticket");
    }
}
