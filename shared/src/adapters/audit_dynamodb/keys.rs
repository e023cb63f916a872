//! Key values of the table layout described in the module documentation.

/// Partition-key prefix of every item of one operation (header, events, snapshots, changes).
pub const OPERATION_PREFIX: &str = "OP#";
/// Partition-key prefix of organization settings.
pub const SETTINGS_PREFIX: &str = "SETTINGS#";
/// Partition-key prefix of leases.
pub const LEASE_PREFIX: &str = "LEASE#";
/// Partition-key prefix of idempotency records.
pub const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";
/// Partition-key prefix of the vendor limits every process shares.
pub const LIMIT_PREFIX: &str = "LIMIT#";
/// Sort key of a shared limit (one per partition).
pub const LIMIT_SK: &str = "LIMIT";

/// Partition-key prefix of approval requests (`approvals.rs`).
pub const APPROVAL_PREFIX: &str = "APPROVAL#";
/// Sort key of an approval request.
pub const APPROVAL_SK: &str = "APPROVAL";
/// Sort key of an approval's decision (beside its request, written once).
pub const APPROVAL_DECISION_SK: &str = "DECISION";
/// Partition-key prefix of approval tokens, keyed by the token's SHA-256.
pub const APPROVAL_TOKEN_PREFIX: &str = "APPROVALTOKEN#";
/// Sort key of an approval token.
pub const APPROVAL_TOKEN_SK: &str = "TOKEN";

/// Sort key of an operation header.
pub const META_SK: &str = "META";
pub const EVENT_PREFIX: &str = "EVENT#";
/// Sort-key prefix of the parts of an event too large for one item (`large_events.rs`).
pub const EVENT_PART_PREFIX: &str = "EVPART#";
pub const SNAPSHOT_PREFIX: &str = "SNAP#";
pub const CHANGE_PREFIX: &str = "CHANGE#";
/// Sort-key prefix of a child operation's link in its parent's partition: a chain's
/// children belong to other PSAs and companies (IT Glue, Microsoft 365), so the `ByClient`
/// index of the parent's company cannot find them all.
pub const CHILD_PREFIX: &str = "CHILD#";
/// Sort key of a lease (one lease per partition).
pub const LEASE_SK: &str = "LEASE";
/// Sort key of an idempotency record (one record per partition).
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
/// Partition key of the `ByTime` GSI. A single partition is fine: an MSP runs
/// at most thousands of offboarding operations a month, one header write each,
/// far below what one partition absorbs (1,000 writes per second), and it
/// makes "all operations, newest first" one Query instead of a Scan and a sort.
pub const ALL_OPERATIONS: &str = "OPERATIONS";

pub fn operation_pk(operation_id: &str) -> String {
    format!("{OPERATION_PREFIX}{operation_id}")
}

pub fn event_sk(event_id: &str) -> String {
    format!("{EVENT_PREFIX}{event_id}")
}

/// The sort-key prefix of every part of event `event_id`.
pub fn event_parts_prefix(event_id: &str) -> String {
    format!("{EVENT_PART_PREFIX}{event_id}#")
}

/// Part `n` of event `event_id`; zero-padded, so the parts sort in order.
pub fn event_part_sk(event_id: &str, n: usize) -> String {
    format!("{}{n:06}", event_parts_prefix(event_id))
}

pub fn snapshot_sk(item_type: &str, item_id: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{item_type}#{item_id}")
}

pub fn child_sk(child_operation_id: &str) -> String {
    format!("{CHILD_PREFIX}{child_operation_id}")
}

pub fn change_sk(change_id: &str) -> String {
    format!("{CHANGE_PREFIX}{change_id}")
}

/// Partition key of the `ByClient` GSI: company ids are per PSA.
pub fn client_pk(psa: &str, client_id: &str) -> String {
    format!("CLIENT#{psa}#{client_id}")
}

pub const SETTING_KEY_PREFIX: &str = "KEY#";

/// `#` (the separator) and `%` (the escape) written as `%23` and `%25`.
fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

/// Partition key of one (psa, scope)'s settings.
pub fn settings_pk(psa: &str, scope: &str) -> String {
    format!("{SETTINGS_PREFIX}{}#{}", escape(psa), escape(scope))
}

/// The prefix of every version of one setting's sort key.
pub fn setting_sk_prefix(key: &str) -> String {
    format!("{SETTING_KEY_PREFIX}{}#", escape(key))
}

pub fn setting_sk(key: &str, version_id: &str) -> String {
    format!("{}{version_id}", setting_sk_prefix(key))
}

/// Partition key of a target's lease. The target (`connectwise#250`) is escaped whole, so
/// `a#b` and `a%23b` stay two targets.
pub fn lease_pk(target: &str) -> String {
    format!("{LEASE_PREFIX}{}", escape(target))
}

/// Partition key of an approval request (a UUIDv7: nothing to escape, escaped anyway).
pub fn approval_pk(approval_id: &str) -> String {
    format!("{APPROVAL_PREFIX}{}", escape(approval_id))
}

/// Partition key of an approval token: its SHA-256 in hex.
pub fn approval_token_pk(token_hash: &str) -> String {
    format!("{APPROVAL_TOKEN_PREFIX}{}", escape(token_hash))
}

/// Partition key of an idempotency record (the key escaped whole, like a lease target).
pub fn idempotency_pk(key: &str) -> String {
    format!("{IDEMPOTENCY_PREFIX}{}", escape(key))
}

/// Partition key of a shared vendor limit (the key escaped whole).
pub fn limit_pk(key: &str) -> String {
    format!("{LIMIT_PREFIX}{}", escape(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        assert_eq!(operation_pk("abc"), "OP#abc");
        assert_eq!(META_SK, "META");
        assert_eq!(event_sk("e1"), "EVENT#e1");
        assert_eq!(snapshot_sk("configuration", "42"), "SNAP#configuration#42");
        assert_eq!(change_sk("c1"), "CHANGE#c1");
        assert_eq!(client_pk("connectwise", "250"), "CLIENT#connectwise#250");
        assert_eq!(ALL_OPERATIONS, "OPERATIONS");
        assert_eq!(lease_pk("connectwise#250"), "LEASE#connectwise%23250");
        assert_eq!(idempotency_pk("deactivate-configs#cw#250"), "IDEMPOTENCY#deactivate-configs%23cw%23250");
    }

    #[test]
    fn setting_keys_escape_the_separator() {
        assert_eq!(settings_pk("connectwise", "250"), "SETTINGS#connectwise#250");
        assert_eq!(settings_pk("connectwise", "*"), "SETTINGS#connectwise#*");
        assert_eq!(setting_sk("notify_to", "v1"), "KEY#notify_to#v1");
        // Without escaping, `a`'s prefix would match `a#b`'s versions, and these two
        // (psa, scope) pairs would share a partition.
        assert!(!setting_sk("a#b", "v1").starts_with(&setting_sk_prefix("a")));
        assert_ne!(settings_pk("a#b", "c"), settings_pk("a", "b#c"));
        assert_ne!(settings_pk("a%23b", "c"), settings_pk("a#b", "c"));
    }

    #[test]
    fn lease_and_idempotency_keys_are_escaped_and_distinct() {
        assert_ne!(lease_pk("a#b"), lease_pk("a%23b"));
        assert_ne!(idempotency_pk("a#b"), idempotency_pk("a%23b"));
        // Every partition key starts with one of the documented prefixes (the IAM policy's
        // `dynamodb:LeadingKeys` conditions rely on them).
        for pk in [operation_pk("x"), settings_pk("a", "b"), lease_pk("t"), idempotency_pk("k")] {
            assert!(
                [OPERATION_PREFIX, SETTINGS_PREFIX, LEASE_PREFIX, IDEMPOTENCY_PREFIX].iter().any(|p| pk.starts_with(p)),
                "{pk}"
            );
        }
    }
}
