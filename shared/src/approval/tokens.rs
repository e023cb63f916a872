//! Approval tokens: 256 random bits from the operating system, written base64url (43
//! characters) in the approver's link; only their SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng;
use sha2::{Digest, Sha256};

use crate::secret::SecretString;

/// Random bytes per token: 256 bits, twice the 128 the guessing bound needs.
pub const TOKEN_BYTES: usize = 32;
/// Characters of a token in a link.
pub const TOKEN_CHARS: usize = 43;

/// A new token from the OS random source. Failing to read it is a configuration problem of
/// the host: no weaker source is used instead.
pub fn new_token() -> Result<SecretString, crate::error::OfframpError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| crate::error::OfframpError::configuration(format!("the OS random source failed: {e}")))?;
    Ok(SecretString::new(URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether `token` has a token's shape: anything else is refused before the store is asked.
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Lowercase hex SHA-256 of the token: what the store keys it by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_well_formed_and_hashed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(well_formed(a.expose()), "{}", a.expose().len());
        assert!(!well_formed("short"));
        assert!(!well_formed(&format!("{}!", &a.expose()[..42])));
        assert_eq!(token_hash(a.expose()).len(), 64);
        assert_ne!(token_hash(a.expose()), token_hash(b.expose()));
    }
}
