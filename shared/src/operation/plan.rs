//! Plans: canonical order and the plan hash an approval binds to.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Ids in the order plans and reports list them: numeric ids numerically, then the rest
/// by text. PSAs number their records; a textual sort would put 10 before 9.
pub fn sort_key(id: &str) -> (u8, u64, String) {
    match id.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, id.to_string()),
    }
}

/// SHA-256 (hex) of the plan's canonical JSON. The caller's canonical form must be
/// deterministic: serde writes struct fields in declaration order, so a struct whose
/// lists are sorted by [`sort_key`] always serialises to the same bytes.
pub fn plan_hash<T: Serialize>(canonical: &T) -> String {
    let bytes = serde_json::to_vec(canonical).expect("a plan serialises to JSON");
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_sort_numerically_and_hashes_are_stable() {
        let mut ids = vec!["10", "9", "100", "abc"];
        ids.sort_by_key(|id| sort_key(id));
        assert_eq!(ids, vec!["9", "10", "100", "abc"]);
        let a = plan_hash(&serde_json::json!({"items": [1, 2]}));
        assert_eq!(a, plan_hash(&serde_json::json!({"items": [1, 2]})));
        assert_ne!(a, plan_hash(&serde_json::json!({"items": [2, 1]})));
        assert_eq!(a.len(), 64);
    }
}
