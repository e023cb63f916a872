//! Typed names of what the audit trail records: which workflow ran, what kind of item it
//! touched, and where a run stopped. Each serialises to the exact string the audit trail
//! has always held (`deactivate-configs`, `configuration`, `approval_required`, …), so
//! records written before these types existed still read.
//!
//! They live in the domain, not in the workflow modules, so that the rollback and the
//! operation engine can name another workflow's items without importing that workflow.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares an enum of names with its wire strings, `as_str`, `Display` and `FromStr`.
macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every name, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The string the audit trail and the reports carry.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        /// Ordered as their names: stores and reports have always sorted by the string.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|n| n.as_str() == text)
                    .ok_or_else(|| UnknownName { kind: stringify!($name), text: text.to_string() })
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        /// Reads as its wire string wherever text is expected (`status.as_deref()`,
        /// comparisons with the names records have always held).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

/// A string that names no known workflow, item kind or run status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{text}'")]
pub struct UnknownName {
    pub kind: &'static str,
    pub text: String,
}

names! {
    /// The workflow an operation ran.
    Workflow {
        /// Every configuration of an offboarded client set inactive.
        DeactivateConfigs = "deactivate-configs",
        /// Every contact of a company set inactive, with related records.
        DeactivateContacts = "deactivate-contacts",
        /// An IT Glue organization deleted after a dependency check and an export.
        DeleteItglueOrg = "delete-itglue-org",
        /// What an earlier operation changed, put back.
        Rollback = "rollback",
        /// One leaver offboarded from Microsoft 365 and the PSA.
        OffboardUser = "offboard-user",
        /// A client offboarded: the workflows above chained, each run a child of this one.
        ClientOffboarding = "client-offboarding",
    }
}

names! {
    /// The kind of item a snapshot or a change record is about.
    ItemKind {
        /// A PSA configuration's status.
        Configuration = "configuration",
        /// A PSA contact's active flag.
        Contact = "contact",
        /// A ticket's contact, owner and queue.
        Ticket = "ticket",
        /// The contact a configuration points at.
        ConfigurationContact = "configuration_contact",
        /// The internal note summarising a run.
        TicketNote = "ticket_note",
        /// A ticket a run opened for its summary.
        SummaryTicket = "summary_ticket",
        /// The notification a run sent.
        Notification = "notification",
        /// An IT Glue organization.
        ItglueOrganization = "itglue_organization",
        /// The IT Glue export taken before a deletion.
        ItglueExport = "itglue_export",
        /// A user account's enabled flag.
        UserAccount = "user_account",
        /// A user's password (reset; cannot be put back).
        UserPassword = "user_password",
        /// A user's sign-in sessions (revoked; cannot be put back).
        UserSessions = "user_sessions",
        /// A user's employee id.
        EmployeeId = "employee_id",
        /// A user's manager link.
        Manager = "manager",
        /// A user's membership of one group.
        GroupMembership = "group_membership",
        /// A group the user was made to own (or owned).
        GroupOwnership = "group_ownership",
        /// One licence (SKU) of a user.
        Licence = "licence",
        /// An Intune managed device (retired; cannot be put back).
        ManagedDevice = "managed_device",
        /// A mailbox's type (user or shared).
        MailboxType = "mailbox_type",
        /// A mailbox's visibility in the address lists.
        MailboxVisibility = "mailbox_visibility",
        /// A mailbox's forwarding.
        MailboxForwarding = "mailbox_forwarding",
        /// A mailbox's automatic replies.
        AutoReply = "auto_reply",
        /// A FullAccess or SendAs permission on a mailbox.
        MailboxPermission = "mailbox_permission",
        /// An Exchange mobile device partnership (removed; cannot be put back).
        MobileDevice = "mobile_device",
        /// A password kept in the secret vault on request.
        StoredPassword = "stored_password",
        /// An on-premises AD account's enabled state (`userAccountControl`).
        AdAccount = "ad_account",
        /// An AD account's password (reset; cannot be put back).
        AdPassword = "ad_password",
        /// An AD account's `employeeID`.
        AdEmployeeId = "ad_employee_id",
        /// An AD account's `manager`.
        AdManager = "ad_manager",
        /// An AD account's membership of one group (the group's `member`).
        AdGroupMembership = "ad_group_membership",
        /// The OU an AD account is in.
        AdLocation = "ad_location",
        /// An AD account's `msExchHideFromAddressLists`.
        AdAddressListVisibility = "ad_address_list_visibility",
    }
}

names! {
    /// Where a leaver's identity lives (docs/workflows.md#003-identity-modes): which
    /// directory masters what, and so which system each action is sent to.
    IdentityMode {
        /// Entra ID only.
        Cloud = "cloud",
        /// On-premises Active Directory only: no Entra ID, no Exchange Online.
        OnPrem = "onprem",
        /// An AD account synced to Entra ID: AD masters the synced attributes.
        HybridSynced = "hybrid-synced",
        /// Two accounts, one in AD and one in Entra ID, each offboarded on its own.
        HybridUnsynced = "hybrid-unsynced",
    }
}

impl IdentityMode {
    /// Whether the mode has an Entra ID account.
    pub fn has_cloud(self) -> bool {
        self != IdentityMode::OnPrem
    }

    /// Whether the mode has an AD account.
    pub fn has_onprem(self) -> bool {
        self != IdentityMode::Cloud
    }
}

names! {
    /// One action of user offboarding (docs/workflows.md#003-actions), as requests,
    /// settings (`user_offboarding_default_actions`) and reports name it.
    OffboardAction {
        RevokeSessions = "revoke_sessions",
        ResetPassword = "reset_password",
        DisableAccount = "disable_account",
        RemoveMobileDevices = "remove_mobile_devices",
        RetireDevices = "retire_devices",
        ConvertToShared = "convert_to_shared",
        GrantFullAccess = "grant_full_access",
        GrantSendAs = "grant_send_as",
        HideFromGal = "hide_from_gal",
        ForwardMail = "forward_mail",
        OutOfOffice = "out_of_office",
        RemoveGroups = "remove_groups",
        AddToLeaverGroup = "add_to_leaver_group",
        TransferOwnership = "transfer_ownership",
        ClearEmployeeId = "clear_employee_id",
        ClearManager = "clear_manager",
        DisablePsaContact = "disable_psa_contact",
        RemoveLicences = "remove_licences",
        NotifyManager = "notify_manager",
        /// On-premises AD: the account moved to the client's disabled users OU.
        MoveToDisabledOu = "move_to_disabled_ou",
    }
}

names! {
    /// Where a run that did not simply complete stopped (the reports' `status`).
    RunStatus {
        /// A dry run: the plan, nothing changed.
        Planned = "planned",
        /// The plan waits for an approval bound to its hash.
        ApprovalRequired = "approval_required",
        /// The plan waits for a confirmation.
        ConfirmationRequired = "confirmation_required",
        /// The plan is larger than the blast-radius guard allows without an override.
        BlastRadiusExceeded = "blast_radius_exceeded",
        /// Dependents or a policy block the change.
        Blocked = "blocked",
        /// An IT Glue organization is gone.
        Deleted = "deleted",
        /// IT Glue accepted the deletion and is still carrying it out.
        PendingDeletion = "pending_deletion",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_serialise_to_the_strings_the_audit_trail_has_always_held() {
        assert_eq!(serde_json::to_value(Workflow::DeactivateConfigs).unwrap(), "deactivate-configs");
        assert_eq!(serde_json::to_value(ItemKind::ConfigurationContact).unwrap(), "configuration_contact");
        assert_eq!(serde_json::to_value(RunStatus::ApprovalRequired).unwrap(), "approval_required");
        for kind in ItemKind::ALL {
            let back: ItemKind = serde_json::from_value(serde_json::to_value(kind).unwrap()).unwrap();
            assert_eq!(back, *kind);
            assert_eq!(kind.as_str().parse::<ItemKind>().unwrap(), *kind);
        }
        assert!("deactivate_configs".parse::<Workflow>().is_err());
    }
}
