//! `offramp contacts deactivate`, `offramp rollback`, `offramp settings`.

use std::io::IsTerminal;

use offramp::app;
use offramp::config::ConfigSource;
use offramp::domain::{GLOBAL_SCOPE, PsaKind, SettingRecord};
use offramp::error::{ErrorCode, OfframpError};
use offramp::ports::NoProgress;
use offramp::workflows::deactivate_contacts::{
    ContactDeactivationReport, ContactDeps, DeactivateContactsRequest, deactivate_contacts,
};
use offramp::workflows::org_settings;
use offramp::workflows::rollback::{RollbackDeps, RollbackReport, RollbackRequest, rollback as run_rollback};

use crate::{ContactsArgs, RollbackArgs, SettingsCommand, confirm, default_user};

fn exit_code(success: bool, code: Option<ErrorCode>) -> i32 {
    if success { 0 } else { code.map_or(1, ErrorCode::exit_code) }
}

pub async fn deactivate(source: &ConfigSource, args: ContactsArgs) -> Result<i32, OfframpError> {
    let services = app::build(source).await?;
    let initiated_by = args.initiated_by.clone().unwrap_or_else(default_user);
    let deps = ContactDeps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        settings: services.org_settings.as_ref(),
        notifier: services.notifier.as_deref(),
        progress: &NoProgress,
        concurrency: services.settings.workflow_concurrency,
    };
    let preserve_primary = match (args.preserve_primary, args.no_preserve_primary) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let mut request = DeactivateContactsRequest {
        company_id: args.company_id.clone(),
        exclude_contacts: args.exclude_contacts.clone(),
        preserve_primary,
        reason: args.reason.clone(),
        confirmation: args.confirmation,
        ticket_id: args.ticket_id.clone(),
        dry_run: args.dry_run,
        initiated_by: Some(initiated_by),
        requester_email: args.requester_email.clone(),
        override_blast_radius: args.override_blast_radius,
        plan_hash: None,
        operation_id: args.resume.clone(),
        idempotency_key: None,
        break_lease: false,
    };
    // In a terminal, a run without --confirmation shows its plan and asks; the answer
    // confirms exactly the plan shown (its hash), so nothing else can slip in.
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if interactive && !args.confirmation && !args.dry_run && args.resume.is_none() && !args.json {
        let plan = deactivate_contacts(&deps, DeactivateContactsRequest { dry_run: true, ..request.clone() }).await;
        print_contacts(&plan);
        if !plan.success {
            return Ok(exit_code(plan.success, plan.primary_error()));
        }
        let count = plan.deactivation_summary.contacts_deactivated;
        if count == 0 {
            eprintln!("Nothing to deactivate.");
            return Ok(0);
        }
        if !confirm(&format!(
            "Deactivate {count} contact(s) of {}? Type 'yes' to apply this plan: ",
            plan.deactivation_summary.company_name.clone().unwrap_or_default()
        )) {
            eprintln!("Not confirmed; nothing was changed.");
            return Ok(ErrorCode::ConfirmationRequired.exit_code());
        }
        request.confirmation = true;
        request.plan_hash = plan.plan_hash.clone();
    }
    let report = deactivate_contacts(&deps, request).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_contacts(&report);
    }
    Ok(exit_code(report.success, report.primary_error()))
}

fn print_contacts(report: &ContactDeactivationReport) {
    let summary = &report.deactivation_summary;
    let status = report.status.as_deref().unwrap_or(if report.success { "completed" } else { "failed" });
    eprintln!("{} (company {}): {status}", summary.company_name.as_deref().unwrap_or("?"), summary.company_id);
    eprintln!(
        "  contacts found {}, {} {}, excluded {}, already inactive {}",
        summary.total_contacts_found,
        if report.dry_run { "to deactivate" } else { "deactivated" },
        summary.contacts_deactivated,
        summary.contacts_excluded,
        summary.contacts_already_inactive
    );
    for contact in &report.contacts_deactivated {
        eprintln!("    - {} ({}) {}", contact.name, contact.contact_id, contact.email.as_deref().unwrap_or(""));
    }
    for excluded in &report.contacts_excluded {
        eprintln!("    = {} ({}): {}", excluded.name, excluded.contact_id, excluded.reason);
    }
    let related = &report.related_updates;
    eprintln!(
        "  open tickets reassigned {}, configurations updated {}, scheduled tasks disabled {}",
        related.open_tickets_reassigned, related.configurations_updated, related.scheduled_tasks_disabled
    );
    if let Some(guard) = &report.blast_radius {
        eprintln!(
            "  blast radius: {} of {} contacts ({}%), limits {} / {}%{}",
            guard.contacts_to_deactivate,
            guard.company_contacts,
            guard.share_percent,
            guard.max_contacts,
            guard.max_share_percent,
            if guard.exceeded { " — EXCEEDED" } else { "" }
        );
    }
    if let Some(ticket) = &report.ticket_id {
        eprintln!("  ticket: {ticket}");
    }
    if let Some(id) = &report.audit_trail.operation_id {
        eprintln!(
            "  operation: {id}{}",
            if report.audit_trail.rollback_available { " (rollback available)" } else { "" }
        );
    }
    if let Some(hash) = &report.plan_hash {
        eprintln!("  plan hash: {hash}");
    }
    for warning in &report.warnings {
        eprintln!("  warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("  error [{}]: {}", error.code, error.message);
    }
}

pub async fn rollback(source: &ConfigSource, args: RollbackArgs) -> Result<i32, OfframpError> {
    let services = app::build(source).await?;
    let deps = RollbackDeps {
        psa: services.psa.as_ref(),
        audit: services.audit.as_ref(),
        registry: offramp::workflows::restorers(),
    };
    let request = RollbackRequest {
        operation_id: args.operation_id.clone(),
        dry_run: args.dry_run,
        initiated_by: Some(args.initiated_by.clone().unwrap_or_else(default_user)),
        reason: args.reason.clone(),
        ..Default::default()
    };
    if !args.dry_run && !args.yes {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            return Err(OfframpError::invalid_input(
                "refusing to roll back without confirmation: pass --yes, or run in a terminal",
            ));
        }
        let preview = run_rollback(&deps, RollbackRequest { dry_run: true, ..request.clone() }).await;
        print_rollback(&preview);
        if !preview.success || preview.statistics.restored == 0 {
            return Ok(exit_code(preview.success, preview.primary_error()));
        }
        if !confirm(&format!("Restore {} item(s)? Type 'yes': ", preview.statistics.restored)) {
            eprintln!("Not confirmed; nothing was changed.");
            return Ok(ErrorCode::RollbackRefused.exit_code());
        }
    }
    let report = run_rollback(&deps, request).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_rollback(&report);
    }
    Ok(exit_code(report.success, report.primary_error()))
}

fn print_rollback(report: &RollbackReport) {
    let s = &report.statistics;
    eprintln!(
        "Rollback of {}{}: {} item(s), restored {}, already restored {}, conflicts {}, errors {}",
        report.rolled_back_operation_id,
        if report.dry_run { " (dry run)" } else { "" },
        s.items,
        s.restored,
        s.already_restored,
        s.conflicts,
        s.errors
    );
    for item in &report.items {
        eprintln!(
            "  {:?} {} {} ({}): now {}, restore to {}{}",
            item.action,
            item.item_type,
            item.item_id,
            item.item_name,
            item.current,
            item.restore_to,
            item.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default()
        );
    }
    for warning in &report.warnings {
        eprintln!("  warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("  error [{}]: {}", error.code, error.message);
    }
}

/// `global` (or `*`) is the scope every client falls back to.
fn scope(client: &str) -> Result<String, OfframpError> {
    let client = client.trim();
    if client.eq_ignore_ascii_case("global") || client == GLOBAL_SCOPE {
        return Ok(GLOBAL_SCOPE.to_string());
    }
    offramp::workflows::input::identifier("CLIENT", Some(client))?
        .ok_or_else(|| OfframpError::invalid_input("CLIENT is required (a PSA company id, or 'global')"))
}

pub async fn settings(source: &ConfigSource, command: SettingsCommand) -> Result<i32, OfframpError> {
    // Settings are per PSA (company ids are); only the PSA kind is needed, no credentials.
    let psa: PsaKind =
        source.get("OFFRAMP_PSA").unwrap_or("connectwise").parse().map_err(OfframpError::configuration)?;
    let psa = psa.as_str();
    let store = app::stores(source).await?.settings;
    let put = |client: &str, key: &str, value: Option<String>, by: Option<String>| {
        let scope = scope(client);
        let key = key.to_string();
        let store = store.clone();
        async move {
            let record = SettingRecord {
                psa: psa.to_string(),
                scope: scope?,
                key,
                value,
                set_by: by.unwrap_or_else(default_user),
                set_at: offramp::domain::now(),
            };
            store.put_setting(&record).await?;
            Ok::<SettingRecord, OfframpError>(record)
        }
    };
    match command {
        SettingsCommand::Set { client, key, value, initiated_by } => {
            let value = org_settings::validate(key.trim(), &value)?;
            let record = put(&client, key.trim(), Some(value), initiated_by).await?;
            println!("{} {} = {}", record.scope, record.key, record.value.unwrap_or_default());
            Ok(0)
        }
        SettingsCommand::Unset { client, key, initiated_by } => {
            org_settings::validate_key(key.trim())?;
            let record = put(&client, key.trim(), None, initiated_by).await?;
            println!("{} {} unset", record.scope, record.key);
            Ok(0)
        }
        SettingsCommand::Get { client, key } => {
            org_settings::validate_key(key.trim())?;
            let resolved = org_settings::resolve_raw(store.as_ref(), psa, &scope(&client)?).await?;
            let (value, from) = resolved.get(key.trim()).cloned().unwrap_or_default();
            println!("{} ({from})", value.as_deref().unwrap_or("(unset)"));
            Ok(0)
        }
        SettingsCommand::List { client, json } => {
            let resolved = org_settings::resolve_raw(store.as_ref(), psa, &scope(&client)?).await?;
            if json {
                let value: serde_json::Map<String, serde_json::Value> = resolved
                    .iter()
                    .map(|(k, (v, from))| (k.clone(), serde_json::json!({ "value": v, "source": from })))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                for (key, (value, from)) in &resolved {
                    println!("{key} = {} ({from})", value.as_deref().unwrap_or("(unset)"));
                }
            }
            Ok(0)
        }
    }
}
