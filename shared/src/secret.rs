//! A string that never prints itself.
//!
//! Credentials travel through the program as [`SecretString`] so that a stray
//! `{:?}` in a log line or an error message shows `[REDACTED]`, never the value.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call only where the value is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = SecretString::new("hunter2-private-key");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-private-key");
    }
}

/// Characters of a generated password: no look-alikes (`0O`, `1lI`) so that a person who
/// must type it once can, and symbols Entra ID accepts in a password
/// (docs/vendors/microsoft-graph.md#passwords).
const PASSWORD_CLASSES: [&str; 4] =
    ["ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!#$%&*+-=?@^_~"];

/// A random password of `length` characters (at least 16) with every class of
/// [`PASSWORD_CLASSES`] in it, from the operating system's random source.
pub fn generate_password(length: usize) -> SecretString {
    use rand::RngExt;
    use rand::seq::SliceRandom;
    let length = length.max(16);
    let mut rng = rand::rng();
    let all: Vec<char> = PASSWORD_CLASSES.concat().chars().collect();
    let mut chars: Vec<char> = PASSWORD_CLASSES
        .iter()
        .map(|class| {
            let class: Vec<char> = class.chars().collect();
            class[rng.random_range(0..class.len())]
        })
        .collect();
    while chars.len() < length {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    SecretString::new(chars.into_iter().collect::<String>())
}

#[cfg(test)]
mod password_tests {
    use super::*;

    #[test]
    fn generated_passwords_have_every_class_and_differ() {
        for length in [0, 16, 24, 64] {
            let password = generate_password(length);
            let text = password.expose();
            assert_eq!(text.chars().count(), length.max(16));
            for class in PASSWORD_CLASSES {
                assert!(text.chars().any(|c| class.contains(c)), "a character of {class} in every password");
            }
        }
        assert_ne!(generate_password(24), generate_password(24));
    }
}
