//! The evidence report as one printable HTML document (docs/evidence.md): counts first,
//! then lists; print CSS for A4 with a page break before each section; no script, no
//! external resource, and a Content-Security-Policy that allows only its own stylesheet
//! (by hash). Every value goes through the one escaper ([`crate::html`]), with hidden
//! characters (bidi overrides, zero-width) shown as code points: vendor text is hostile.

use std::fmt::Write;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{Evidence, ItemLine, RunEvidence, differences, errors_of, text};
use crate::domain::{OperationEventKind, iso8601};
use crate::workflows::input::is_format_character;

const CSS: &str = "\
@page{size:A4;margin:14mm 12mm}\
body{font:10pt/1.35 system-ui,-apple-system,'Segoe UI',sans-serif;color:#111;margin:0 auto;max-width:190mm}\
h1{font-size:17pt;margin:0 0 4pt}h2{font-size:13pt;border-bottom:1pt solid #444;margin-top:14pt}\
h3{font-size:11.5pt;margin:10pt 0 4pt}h4{font-size:10.5pt;margin:8pt 0 3pt}\
table{border-collapse:collapse;width:100%;margin:3pt 0 8pt;table-layout:auto}\
th,td{border:0.5pt solid #999;padding:2pt 4pt;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#eee}thead{display:table-header-group}tr{break-inside:avoid}\
.facts th{width:28%}.num{text-align:right;font-variant-numeric:tabular-nums}\
.failed{color:#a00;font-weight:600}.mono{font-family:ui-monospace,monospace;font-size:8.5pt}\
.none{color:#555;font-style:italic}footer{margin-top:14pt;font-size:8.5pt;color:#444}\
@media print{section{break-before:page}section.first{break-before:auto}a{color:inherit}}";

/// Longest value shown in a table cell; the whole value is in the trail.
const CELL_CHARS: usize = 300;

/// Escape vendor or user text for the document.
fn esc(value: &str) -> String {
    crate::html::escape_visible(value, is_format_character)
}

fn esc_cut(value: &str) -> String {
    if value.chars().count() <= CELL_CHARS {
        return esc(value);
    }
    let cut: String = value.chars().take(CELL_CHARS).collect();
    format!("{}…", esc(&cut))
}

/// The document's Content-Security-Policy: nothing but its own stylesheet.
pub fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; script-src 'none'; base-uri 'none'; \
         form-action 'none'"
    )
}

/// Render the whole document.
pub fn render(evidence: &Evidence) -> String {
    let mut out =
        String::with_capacity(64 * 1024 + evidence.runs.iter().map(|r| r.detail.changes.len() * 400).sum::<usize>());
    let title = format!("Offboarding evidence: {}", evidence.operation.client_name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&content_security_policy()),
        esc(&title)
    );
    header(&mut out, evidence);
    summary(&mut out, evidence);
    plan(&mut out, evidence);
    approval(&mut out, evidence);
    changes(&mut out, evidence);
    problems(&mut out, evidence);
    exports(&mut out, evidence);
    let _ = write!(
        out,
        "<footer>Rendered from the audit trail at {} for operation <span class=\"mono\">{}</span>. \
         The trail keeps every record in full; long values are shortened here.</footer>\n</body></html>\n",
        esc(&iso8601(evidence.rendered_at)),
        esc(&evidence.operation.operation_id)
    );
    out
}

fn fact(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(name), esc(value));
}

fn header(out: &mut String, evidence: &Evidence) {
    let op = &evidence.operation;
    let kind = if op.workflow == crate::domain::Workflow::ClientOffboarding {
        "Client offboarding".to_string()
    } else {
        format!("Workflow run: {}", op.workflow)
    };
    let _ = write!(out, "<header><h1>{} — evidence</h1><table class=\"facts\" id=\"facts\"><tbody>", esc(&kind));
    fact(out, "Client", &format!("{} (id {}, {})", op.client_name, op.client_id, op.psa));
    fact(out, "Operation", &op.operation_id);
    fact(out, "Outcome", &evidence.outcome.status);
    if let Some(ticket) = &evidence.outcome.ticket_id {
        fact(out, "Ticket", ticket);
    }
    fact(out, "Requested by", &op.initiated_by);
    if let Some(on_behalf_of) = op.input.get("on_behalf_of").and_then(Value::as_str) {
        fact(out, "On behalf of", on_behalf_of);
    }
    fact(out, "Requested at", &iso8601(op.created_at));
    fact(out, "Reason", op.reason.as_deref().unwrap_or("-"));
    fact(out, "Dry run", if op.dry_run { "yes: nothing was changed" } else { "no" });
    out.push_str("</tbody></table></header>\n");
}

fn summary(out: &mut String, evidence: &Evidence) {
    out.push_str(
        "<section class=\"first\" id=\"summary\"><h2>Summary</h2><table><thead><tr><th>System</th><th>For</th>\
         <th>Run</th><th>Status</th><th>Changed</th><th>Skipped</th><th>Failed</th><th>Uncertain</th>\
         <th>Not changed</th></tr></thead><tbody>",
    );
    for run in evidence.applied() {
        let counts = run.counts();
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(run.system()),
            esc(&run.leaver().unwrap_or_default()),
            esc(&run.detail.operation.operation_id),
            esc(&run.status()),
            n("changed"),
            n("skipped"),
            if n("failed") > 0 { " failed" } else { "" },
            n("failed"),
            n("uncertain") + n("intended"),
            n("not changed"),
        );
    }
    out.push_str("</tbody></table>");
    if evidence.applied().next().is_none() {
        out.push_str("<p class=\"none\">No run changed anything.</p>");
    }
    out.push_str("</section>\n");
}

fn plan(out: &mut String, evidence: &Evidence) {
    out.push_str("<section id=\"plan\"><h2>What was planned</h2>");
    let chain = evidence.chain_plan();
    let hash = chain.and_then(|p| p.get("plan_hash")).map(|h| text(Some(h)));
    let hash = hash.or_else(|| evidence.operation.plan_hash.clone()).unwrap_or_else(|| "-".into());
    let _ = write!(out, "<p>Plan hash approved: <span class=\"mono\">{}</span></p>", esc(&hash));
    out.push_str(
        "<table><thead><tr><th>Step</th><th>For</th><th>Plan hash</th><th>Dry-run counts</th></tr></thead><tbody>",
    );
    let runs = chain.and_then(|p| p.get("runs")).and_then(Value::as_array).cloned().unwrap_or_default();
    for run in &runs {
        let hash = run.get("plan_hash").and_then(Value::as_str);
        let mut counts = numbers(run.get("planned"));
        if counts.is_empty() {
            // The step result keeps scalars only; the dry run's own event has its counts.
            let dry_run = evidence.runs.iter().find(|r| r.detail.operation.dry_run && r.plan_hash() == hash);
            counts = numbers(dry_run.and_then(|r| r.detail.last_event()).map(|e| &e.detail));
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&text(run.get("step"))),
            esc(&text(run.get("leaver"))),
            esc(&text(run.get("plan_hash"))),
            esc(&counts.join(", "))
        );
    }
    out.push_str("</tbody></table>");
    let dry: Vec<&RunEvidence> = evidence.runs.iter().filter(|r| r.detail.operation.dry_run).collect();
    let _ = write!(out, "<p>{} dry run(s) in the trail: ", dry.len());
    let ids: Vec<String> = dry.iter().map(|r| esc(&r.detail.operation.operation_id)).collect();
    let _ = writeln!(out, "<span class=\"mono\">{}</span></p></section>", ids.join(", "));
}

/// The counts in a report or event detail (numbers, and numbers one object down), except
/// the error count.
fn numbers(detail: Option<&Value>) -> Vec<String> {
    let mut counts = Vec::new();
    for (key, value) in detail.and_then(Value::as_object).into_iter().flatten() {
        match value {
            Value::Number(n) if key != "errors_total" => counts.push(format!("{key} {n}")),
            Value::Object(inner) => {
                counts.extend(inner.iter().filter(|(_, v)| v.is_number()).map(|(k, v)| format!("{key}.{k} {v}")))
            }
            _ => {}
        }
    }
    counts
}

fn approval(out: &mut String, evidence: &Evidence) {
    out.push_str(
        "<section id=\"approval\"><h2>Who approved it, and when</h2><table><thead><tr><th>When</th><th>What</th>\
         <th>Who</th><th>Detail</th></tr></thead><tbody>",
    );
    let mut rows = 0;
    for event in &evidence.events {
        let d = &event.detail;
        let (what, who, detail) = match event.kind {
            OperationEventKind::ApprovalRequested => {
                ("approval requested", text(d.get("approvers")), format!("expires {}", text(d.get("expires_at"))))
            }
            OperationEventKind::ApprovalDecided => (
                "approval decided",
                text(d.get("approved_by")),
                format!("{} at {}", text(d.get("verdict")), text(d.get("decided_at"))),
            ),
            OperationEventKind::ApprovalAttemptRefused => ("approval click refused", String::new(), d.to_string()),
            _ => continue,
        };
        rows += 1;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"approver\">{}</td><td>{}</td></tr>",
            esc(&iso8601(event.at)),
            esc(what),
            esc(&who),
            esc_cut(&detail)
        );
    }
    if let Some(consent) = &evidence.outcome.consent {
        rows += 1;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>consent the runs were bound to</td><td class=\"approver\">{}</td><td>plan {}</td></tr>",
            esc(&text(consent.get("approved_at"))),
            esc(&text(consent.get("approved_by"))),
            esc_cut(&text(consent.get("plan_hash")))
        );
    }
    out.push_str("</tbody></table>");
    if rows == 0 {
        out.push_str("<p class=\"none\">No approval is recorded for this operation.</p>");
    }
    out.push_str("</section>\n");
}

fn changes(out: &mut String, evidence: &Evidence) {
    out.push_str("<section id=\"changes\"><h2>Every change, before and after</h2>");
    for system in ["Users", "Contacts", "Configurations", "IT Glue", "Rollback", "Client offboarding"] {
        let runs: Vec<&RunEvidence> = evidence.applied().filter(|r| r.system() == system).collect();
        if runs.is_empty() {
            continue;
        }
        let _ = write!(out, "<h3>{}</h3>", esc(system));
        for run in runs {
            let whose = run.leaver().map(|l| format!("{l} — ")).unwrap_or_default();
            let _ = write!(
                out,
                "<h4>{}operation <span class=\"mono\">{}</span> ({})</h4>",
                esc(&whose),
                esc(&run.detail.operation.operation_id),
                esc(&run.status())
            );
            for (kind, lines) in &run.items {
                let _ = write!(out, "<p><strong>{}</strong>: {} item(s)</p>", esc(kind), lines.len());
                item_table(out, lines);
            }
            if run.items.is_empty() {
                out.push_str("<p class=\"none\">No item changes recorded.</p>");
            }
        }
    }
    out.push_str("</section>\n");
}

/// One row per item: a table, so 5,000 configurations stay one table.
fn item_table(out: &mut String, lines: &[ItemLine]) {
    out.push_str(
        "<table class=\"items\"><thead><tr><th>Id</th><th>Name</th><th>Outcome</th><th>Before → after</th>\
         <th>When</th></tr></thead><tbody>",
    );
    for line in lines {
        let diff = differences(&line.before, line.after.as_ref());
        let mut cell = String::new();
        for (i, (field, before, after)) in diff.iter().enumerate() {
            if i > 0 {
                cell.push_str("<br>");
            }
            let field = if field.is_empty() { String::new() } else { format!("{}: ", esc(field)) };
            let _ = write!(cell, "{field}{} → {}", esc_cut(before), esc_cut(after));
        }
        if let Some(why) = &line.why {
            let _ = write!(cell, "{}{}", if cell.is_empty() { "" } else { "<br>" }, esc_cut(why));
        }
        let class = if line.outcome == "failed" { " class=\"failed\"" } else { "" };
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td{class}>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&line.id),
            esc_cut(&line.name),
            esc(&line.outcome),
            if cell.is_empty() { "<span class=\"none\">no difference recorded</span>".into() } else { cell },
            line.at.map(|at| esc(&iso8601(at))).unwrap_or_default()
        );
    }
    out.push_str("</tbody></table>");
}

fn problems(out: &mut String, evidence: &Evidence) {
    out.push_str("<section id=\"problems\"><h2>What failed, was skipped or was not run, and why</h2>");
    let outcome = &evidence.outcome;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for (code, message) in &outcome.errors {
        rows.push(("chain".into(), code.clone(), message.clone()));
    }
    for step in &outcome.not_run {
        rows.push((step.clone(), "not run".into(), "an earlier step failed".into()));
    }
    for (step, why) in &outcome.skipped {
        rows.push((step.clone(), "skipped".into(), why.clone()));
    }
    for run in evidence.applied() {
        let who = format!("{} {}", run.system(), run.leaver().unwrap_or_default());
        for event in &run.detail.events {
            if matches!(event.kind, OperationEventKind::Failed | OperationEventKind::Refused) {
                for (code, message) in errors_of(&event.detail) {
                    rows.push((who.clone(), format!("{} {code}", event.kind.as_str()), message));
                }
            }
        }
    }
    out.push_str("<table><thead><tr><th>Where</th><th>What</th><th>Why</th></tr></thead><tbody>");
    for (place, what, why) in &rows {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(place), esc(what), esc_cut(why));
    }
    out.push_str("</tbody></table>");
    if rows.is_empty() {
        out.push_str("<p class=\"none\">No step failed, was skipped or was left out.</p>");
    }
    for run in evidence.applied() {
        let items: Vec<ItemLine> = run.problems().into_iter().cloned().chain(run.untouched.iter().cloned()).collect();
        if items.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<h4>{} {} — items not changed ({})</h4>",
            esc(run.system()),
            esc(&run.leaver().unwrap_or_default()),
            items.len()
        );
        item_table(out, &items);
    }
    out.push_str("</section>\n");
}

fn exports(out: &mut String, evidence: &Evidence) {
    out.push_str("<section id=\"exports\"><h2>IT Glue export kept</h2>");
    let kept = evidence.exports();
    if kept.is_empty() {
        out.push_str("<p class=\"none\">No IT Glue export was taken in this operation.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Store</th><th>Location</th><th>Version</th><th>SHA-256</th><th>Size (bytes)</th>\
         <th>Retained until</th></tr></thead><tbody>",
    );
    for (_, archive) in kept {
        let location = format!("{}/{}", text(archive.get("bucket")), text(archive.get("key")));
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&text(archive.get("store"))),
            esc(&location),
            esc(&text(archive.get("version_id"))),
            esc(&text(archive.get("sha256"))),
            esc(&text(archive.get("size"))),
            esc(&text(archive.get("retain_until")))
        );
    }
    out.push_str("</tbody></table></section>\n");
}
