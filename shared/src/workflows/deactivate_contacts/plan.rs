//! The plan: every contact and what happens to it, the open tickets and configurations
//! that point at a contact about to go and what each becomes, the primary-contact
//! signals, and the blast-radius figures. Its hash is what a confirmation binds to.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::report::{
    BlastRadius, ContactDeactivationReport, ExcludedContact, PrimaryContactReport, Reassignment, ReassignmentTarget,
    deactivated_entry, id_value,
};
use super::{ContactDeps, Validated, WORKFLOW};
use crate::domain::{Company, Configuration, Contact, OperationRecord, Ticket, TicketAssignment, TicketOwner};
use crate::error::OfframpError;
use crate::operation::{plan_hash, sort_key};
use crate::ports::Psa;
use crate::workflows::org_settings::{self, ContactTarget, OrgSettings};

/// What a run does to one open ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTicketChange {
    /// The ticket's new contact; `None` clears it.
    pub contact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<TicketOwner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl PlannedTicketChange {
    pub(super) fn assignment(&self) -> TicketAssignment {
        TicketAssignment {
            contact_id: Some(self.contact_id.clone()),
            owner: self.owner.clone().map(Some),
            queue: self.queue.clone().map(Some),
        }
    }

    /// The ticket already looks like this change's result.
    pub(super) fn done_on(&self, ticket: &Ticket) -> bool {
        ticket.contact_id == self.contact_id
            && self.owner.as_ref().is_none_or(|o| ticket.owner_id.as_deref() == Some(o.id.as_str()))
            && self.queue.as_ref().is_none_or(|q| ticket.queue.as_deref() == Some(q.as_str()))
    }
}

/// A snapshot of a related record: its state before, and what the plan does to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RelatedSnapshot<T, C> {
    pub before: T,
    pub change: C,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) enum ContactPlan {
    Deactivate,
    Excluded(String),
    AlreadyInactive,
}

impl ContactPlan {
    pub(super) fn action(&self) -> &'static str {
        match self {
            ContactPlan::Deactivate => "deactivate",
            ContactPlan::Excluded(_) => "exclude",
            ContactPlan::AlreadyInactive => "skip",
        }
    }
}

pub(super) struct Plan {
    pub contacts: Vec<(Contact, ContactPlan)>,
    pub tickets: Vec<(Ticket, PlannedTicketChange)>,
    pub configurations: Vec<(Configuration, Option<String>)>,
    pub primary: Vec<PrimaryContactReport>,
    pub reassignment: Reassignment,
    pub blast: BlastRadius,
    pub hash: String,
    pub warnings: Vec<String>,
}

/// How strongly a primary-contact signal names the primary: the company record's own
/// pointer (ConnectWise `company.defaultContact`, HaloPSA `site.maincontact_id`) names one
/// contact by construction, while a flag on contact records (ConnectWise
/// `contact.defaultFlag`, Autotask `contact.primaryContact`) can be set on several; lower
/// is stronger.
fn signal_rank(signal: &str) -> u8 {
    if signal.starts_with("contact.") { 1 } else { 0 }
}

/// The primary contact related records are pointed at when a setting says `primary`, and
/// the signal that decided. Every contact any signal names is kept (see `make_plan`), but
/// tickets need exactly one, so the rule is: among the primary contacts that stay active,
/// the one named by the strongest signal ([`signal_rank`]); among equals the lowest id,
/// compared as numbers ("9" before "10"), then ids that are not numbers, as text. The
/// report says which contact this gave and why.
pub(crate) fn reassignment_primary<'a>(
    primary_signals: &'a BTreeMap<String, Vec<String>>,
    staying: &HashSet<String>,
) -> Option<(&'a str, &'a str)> {
    primary_signals
        .iter()
        .filter(|(id, _)| staying.contains(*id))
        .filter_map(|(id, signals)| {
            let strongest = signals.iter().min_by_key(|s| signal_rank(s))?;
            Some((id.as_str(), strongest.as_str()))
        })
        .min_by_key(|(id, signal)| (signal_rank(signal), sort_key(id)))
}

/// Resolve a [`ContactTarget`] to a contact id that stays active, with the reason for the report.
fn resolve_target(
    target: &ContactTarget,
    key: &str,
    staying: &HashSet<String>,
    primary_kept: Option<(&str, &str)>,
) -> Result<Option<(String, String)>, OfframpError> {
    match target {
        ContactTarget::None => Ok(None),
        ContactTarget::Primary => {
            Ok(primary_kept.map(|(id, signal)| (id.to_string(), format!("primary contact ({signal})"))))
        }
        ContactTarget::Contact(id) if staying.contains(id) => Ok(Some((id.clone(), format!("setting {key}")))),
        ContactTarget::Contact(id) => Err(OfframpError::configuration(format!(
            "setting {key} names contact {id}, which is not a contact of this company that stays active; nothing was changed"
        ))),
    }
}

/// The plan's canonical form: sorted inputs and fields in a fixed order, so the same plan
/// always serialises to the same bytes (and hashes as it did before the engine existed).
fn canonical(psa: &str, company: &Company, plan: &Plan) -> Value {
    json!({
        "workflow": WORKFLOW,
        "psa": psa,
        "company_id": company.id,
        "contacts": plan.contacts.iter().map(|(c, p)| json!([c.id, c.active, p])).collect::<Vec<_>>(),
        "tickets": plan.tickets.iter().map(|(t, ch)| json!([t.id, t.contact_id, ch])).collect::<Vec<_>>(),
        "configurations": plan.configurations.iter().map(|(c, to)| json!([c.id, c.contact_id, to])).collect::<Vec<_>>(),
    })
}

/// The plan as its `planned` / `refused` event records it.
pub(super) fn detail(plan: &Plan) -> Value {
    json!({
        "plan_hash": plan.hash,
        "plan": {
            "contacts": plan.contacts.iter().map(|(c, p)| json!({"contact_id": c.id, "name": c.name, "action": p.action()})).collect::<Vec<_>>(),
            "tickets": plan.tickets.iter().map(|(t, ch)| json!({"ticket_id": t.id, "change": ch})).collect::<Vec<_>>(),
            "configurations": plan.configurations.iter().map(|(c, to)| json!({"config_id": c.id, "contact_id": to})).collect::<Vec<_>>(),
            "blast_radius": plan.blast,
        },
    })
}

/// Contacts, signals, who stays: what the related records' plans are drawn from.
struct Roster {
    contacts: Vec<Contact>,
    /// Contact id → the signals naming it primary (every one any signal names is primary).
    primary_signals: BTreeMap<String, Vec<String>>,
    leaving: HashSet<String>,
    staying: HashSet<String>,
}

impl Roster {
    fn target_report(&self, target: &Option<(String, String)>) -> Option<ReassignmentTarget> {
        target.as_ref().map(|(id, why)| ReassignmentTarget {
            contact_id: id_value(id),
            name: self.contacts.iter().find(|c| &c.id == id).map(|c| c.name.clone()),
            chosen_by: why.clone(),
        })
    }

    fn primary_kept(&self) -> Option<(&str, &str)> {
        reassignment_primary(&self.primary_signals, &self.staying)
    }
}

pub(super) async fn make_plan(
    deps: &ContactDeps<'_>,
    v: &Validated,
    company: &Company,
    settings: &OrgSettings,
    preserve_primary: bool,
    override_guard: bool,
) -> Result<Plan, OfframpError> {
    let psa = deps.psa;
    let mut contacts = psa.list_contacts(&company.id).await?;
    contacts.sort_by_key(|c| sort_key(&c.id));
    let mut warnings = unknown_exclusions(&contacts, &v.exclude);
    let primary_signals = primary_signals(psa, company).await?;
    let planned = contact_plan(&contacts, &primary_signals, &v.exclude, preserve_primary);
    let primary = primary_report(&contacts, &primary_signals, &planned, &mut warnings);
    let leaving: HashSet<String> =
        planned.iter().filter(|(_, p)| *p == ContactPlan::Deactivate).map(|(c, _)| c.id.clone()).collect();
    let staying = contacts.iter().filter(|c| c.active && !leaving.contains(&c.id)).map(|c| c.id.clone()).collect();
    let roster = Roster { contacts, primary_signals, leaving, staying };
    warnings.extend(several_primaries(&roster, settings));

    let (tickets, ticket_contact) = ticket_plan(psa, company, settings, &roster).await?;
    let mut reassignment = Reassignment { ticket_contact, configuration_contact: None };
    let (configurations, configuration_contact) =
        configuration_plan(psa, company, settings, &roster, &mut warnings).await?;
    reassignment.configuration_contact = configuration_contact;
    warnings.push(format!(
        "Scheduled tasks: {} has no documented API for recurring work tied to a contact; none were checked or disabled",
        psa.kind()
    ));
    if !roster.contacts.iter().any(|c| c.active) {
        warnings.push("The company has no active contacts: nothing to deactivate".into());
    }
    let blast = blast_radius(&roster, settings, override_guard);
    let mut plan = Plan {
        contacts: planned,
        tickets,
        configurations,
        primary,
        reassignment,
        blast,
        hash: String::new(),
        warnings,
    };
    plan.hash = plan_hash(&canonical(psa.kind().as_str(), company, &plan));
    Ok(plan)
}

fn unknown_exclusions(contacts: &[Contact], exclude: &[String]) -> Vec<String> {
    let known: HashSet<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
    exclude
        .iter()
        .filter(|id| !known.contains(id.as_str()))
        .map(|id| format!("exclude_contacts: contact {id} is not a contact of this company; ignored"))
        .collect()
}

/// Every contact any signal names is primary: when the signals disagree, all are kept.
async fn primary_signals(psa: &dyn Psa, company: &Company) -> Result<BTreeMap<String, Vec<String>>, OfframpError> {
    let mut primary_signals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for signal in psa.primary_contacts(company).await? {
        let entry = primary_signals.entry(signal.contact_id.clone()).or_default();
        if !entry.contains(&signal.signal) {
            entry.push(signal.signal);
        }
    }
    Ok(primary_signals)
}

fn contact_plan(
    contacts: &[Contact],
    primary_signals: &BTreeMap<String, Vec<String>>,
    exclude: &[String],
    preserve_primary: bool,
) -> Vec<(Contact, ContactPlan)> {
    contacts
        .iter()
        .map(|c| {
            let plan = if exclude.contains(&c.id) {
                ContactPlan::Excluded("Explicitly excluded".into())
            } else if !c.active {
                ContactPlan::AlreadyInactive
            } else if let Some(signals) = primary_signals.get(&c.id).filter(|_| preserve_primary) {
                ContactPlan::Excluded(format!("Primary contact preserved ({})", signals.join(", ")))
            } else {
                ContactPlan::Deactivate
            };
            (c.clone(), plan)
        })
        .collect()
}

fn primary_report(
    contacts: &[Contact],
    primary_signals: &BTreeMap<String, Vec<String>>,
    planned: &[(Contact, ContactPlan)],
    warnings: &mut Vec<String>,
) -> Vec<PrimaryContactReport> {
    let by_id: HashMap<&str, &Contact> = contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    for (id, signals) in primary_signals {
        if !by_id.contains_key(id.as_str()) {
            warnings.push(format!(
                "primary contact {id} ({}) is not among the company's contacts; it was not considered",
                signals.join(", ")
            ));
        }
    }
    primary_signals
        .iter()
        .map(|(id, signals)| PrimaryContactReport {
            contact_id: id_value(id),
            name: by_id.get(id.as_str()).map(|c| c.name.clone()),
            signals: signals.clone(),
            preserved: planned.iter().any(|(c, p)| &c.id == id && matches!(p, ContactPlan::Excluded(_))),
        })
        .collect()
}

/// When several primaries stay and a setting says `primary`, say which one gets the records.
fn several_primaries(roster: &Roster, settings: &OrgSettings) -> Option<String> {
    let candidates: Vec<&String> = roster.primary_signals.keys().filter(|id| roster.staying.contains(*id)).collect();
    let uses_primary = [&settings.ticket_contact, &settings.configuration_contact].contains(&&ContactTarget::Primary);
    let (id, signal) = roster.primary_kept()?;
    if candidates.len() <= 1 || !uses_primary {
        return None;
    }
    let named: Vec<String> =
        candidates.iter().map(|c| format!("{c} ({})", roster.primary_signals[*c].join(", "))).collect();
    Some(format!(
        "The primary-contact signals name {} contacts: {}. All stay active; related records go to {id}, named by \
         {signal} (the company's own pointer before contact flags, then the lowest id).",
        candidates.len(),
        named.join("; ")
    ))
}

/// Open tickets of leaving contacts, and the contact they get.
async fn ticket_plan(
    psa: &dyn Psa,
    company: &Company,
    settings: &OrgSettings,
    roster: &Roster,
) -> Result<(Vec<(Ticket, PlannedTicketChange)>, Option<ReassignmentTarget>), OfframpError> {
    let target =
        resolve_target(&settings.ticket_contact, org_settings::TICKET_CONTACT, &roster.staying, roster.primary_kept())?;
    let report = roster.target_report(&target);
    let contact_id = target.map(|(id, _)| id);
    let mut tickets: Vec<(Ticket, PlannedTicketChange)> = psa
        .open_tickets(&company.id)
        .await?
        .into_iter()
        .filter(|t| !t.closed && t.contact_id.as_ref().is_some_and(|c| roster.leaving.contains(c)))
        .map(|t| {
            let change = PlannedTicketChange {
                contact_id: contact_id.clone(),
                owner: settings.ticket_owner.clone(),
                queue: settings.ticket_queue.clone(),
            };
            (t, change)
        })
        .collect();
    tickets.sort_by_key(|(t, _)| sort_key(&t.id));
    Ok((tickets, report))
}

type ConfigurationPlan = (Vec<(Configuration, Option<String>)>, Option<ReassignmentTarget>);

/// Configurations of leaving contacts, and the contact they get (where the PSA has one).
async fn configuration_plan(
    psa: &dyn Psa,
    company: &Company,
    settings: &OrgSettings,
    roster: &Roster,
    warnings: &mut Vec<String>,
) -> Result<ConfigurationPlan, OfframpError> {
    if !psa.supports_configuration_contacts() {
        if !roster.leaving.is_empty() {
            warnings.push(format!(
                "{} configurations have no contact field this adapter can change; configuration contacts were not checked",
                psa.kind()
            ));
        }
        return Ok((Vec::new(), None));
    }
    let key = org_settings::CONFIGURATION_CONTACT;
    let target = resolve_target(&settings.configuration_contact, key, &roster.staying, roster.primary_kept())?;
    let report = roster.target_report(&target);
    let to = target.map(|(id, _)| id);
    let mut configurations: Vec<(Configuration, Option<String>)> = psa
        .list_configurations(&company.id, true)
        .await?
        .into_iter()
        .filter(|c| c.contact_id.as_ref().is_some_and(|id| roster.leaving.contains(id)))
        .map(|c| (c, to.clone()))
        .collect();
    configurations.sort_by_key(|(c, _)| sort_key(&c.id));
    Ok((configurations, report))
}

fn blast_radius(roster: &Roster, settings: &OrgSettings, override_guard: bool) -> BlastRadius {
    let to_deactivate = roster.leaving.len() as u64;
    let company_contacts = roster.contacts.len() as u64;
    let share = if company_contacts == 0 { 0.0 } else { to_deactivate as f64 * 100.0 / company_contacts as f64 };
    let exceeded =
        to_deactivate > settings.guard_max_contacts || share > settings.guard_max_contact_share as f64 + f64::EPSILON;
    BlastRadius {
        contacts_to_deactivate: to_deactivate,
        company_contacts,
        share_percent: (share * 10.0).round() / 10.0,
        max_contacts: settings.guard_max_contacts,
        max_share_percent: settings.guard_max_contact_share,
        exceeded,
        overridden: exceeded && override_guard,
    }
}

/// The report of a plan: what a real run would do.
pub(super) fn planned_report(company: &Company, record: &OperationRecord, plan: &Plan) -> ContactDeactivationReport {
    let mut report = ContactDeactivationReport::empty(Some(company), None, &record.initiated_by, record.dry_run);
    report.success = true;
    report.deactivation_summary.reason = record.reason.clone();
    report.deactivation_summary.total_contacts_found = plan.contacts.len() as u64;
    for (contact, p) in &plan.contacts {
        match p {
            ContactPlan::Deactivate => {
                report.deactivation_summary.contacts_deactivated += 1;
                report.contacts_deactivated.push(deactivated_entry(contact));
            }
            ContactPlan::Excluded(reason) => {
                report.deactivation_summary.contacts_excluded += 1;
                report.contacts_excluded.push(ExcludedContact {
                    contact_id: id_value(&contact.id),
                    name: contact.name.clone(),
                    reason: reason.clone(),
                });
            }
            ContactPlan::AlreadyInactive => report.deactivation_summary.contacts_already_inactive += 1,
        }
    }
    report.related_updates.open_tickets_reassigned = plan.tickets.len() as u64;
    report.related_updates.configurations_updated = plan.configurations.len() as u64;
    report.audit_trail.operation_id = Some(record.operation_id.clone());
    report.primary_contacts = plan.primary.clone();
    report.reassignment = Some(plan.reassignment.clone());
    report.blast_radius = Some(plan.blast.clone());
    report.plan_hash = Some(plan.hash.clone());
    report.warnings = plan.warnings.clone();
    report
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn signals(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(id, s)| (id.to_string(), s.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn staying(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn the_engine_hash_is_the_hash_plans_had_before() {
        // Plans were hashed as SHA-256 of the canonical value's `to_string()`; the engine
        // hashes `to_vec` of the same value. A reviewed plan_hash must still match.
        let value = json!({"workflow": WORKFLOW, "psa": "connectwise", "company_id": "250",
            "contacts": [["9", true, "Deactivate"], ["10", false, {"Excluded": "Primary ü"}]], "tickets": [], "configurations": []});
        assert_eq!(plan_hash(&value), hex::encode(Sha256::digest(value.to_string().as_bytes())));
    }
    #[test]
    fn the_reassignment_primary_is_the_strongest_signal_then_the_lowest_numeric_id() {
        // Two contact flags: numeric order, not text order ("10" sorts before "9" as text).
        let flags = signals(&[("10", &["contact.defaultFlag"]), ("9", &["contact.defaultFlag"])]);
        assert_eq!(reassignment_primary(&flags, &staying(&["9", "10"])), Some(("9", "contact.defaultFlag")));
        // The company's own pointer beats a flag, whatever the ids.
        let mixed = signals(&[("10", &["company.defaultContact"]), ("9", &["contact.defaultFlag"])]);
        assert_eq!(reassignment_primary(&mixed, &staying(&["9", "10"])), Some(("10", "company.defaultContact")));
        // A contact named by both signals is decided by the stronger one.
        let both =
            signals(&[("7", &["contact.defaultFlag", "company.defaultContact"]), ("3", &["contact.defaultFlag"])]);
        assert_eq!(reassignment_primary(&both, &staying(&["3", "7"])), Some(("7", "company.defaultContact")));
        // Only contacts that stay active can be targets.
        assert_eq!(reassignment_primary(&mixed, &staying(&["9"])), Some(("9", "contact.defaultFlag")));
        assert_eq!(reassignment_primary(&mixed, &staying(&[])), None);
        // Ids that are not numbers come after numeric ones.
        let text = signals(&[("abc", &["site.maincontact_id"]), ("12", &["site.maincontact_id"])]);
        assert_eq!(reassignment_primary(&text, &staying(&["abc", "12"])), Some(("12", "site.maincontact_id")));
    }
}
