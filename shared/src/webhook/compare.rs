//! Constant-time comparisons of what a caller presents with what we expect: a URL token,
//! a signature, a shared secret. An ordinary `==` stops at the first differing byte, and
//! the time it takes tells an attacker how much of a guess was right
//! (docs/architecture.md#psa-webhooks).
//!
//! Both sides are hashed to SHA-256 first, so the comparison always covers 32 bytes and
//! the time does not depend on the lengths either; [`subtle`] does the comparison itself
//! without a data-dependent branch.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `presented` equals `expected`, in time that depends on neither content nor length
/// (beyond hashing them).
pub fn secrets_equal(presented: &[u8], expected: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    let expected = Sha256::digest(expected);
    bool::from(presented.as_slice().ct_eq(expected.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_equal() {
        assert!(secrets_equal(b"token", b"token"));
        assert!(!secrets_equal(b"token", b"tokeN"));
        assert!(!secrets_equal(b"token", b"token "));
        assert!(!secrets_equal(b"", b"token"));
        assert!(secrets_equal(b"", b""));
    }
}
