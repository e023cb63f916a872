//! LDAP results and transport failures as [`DirectoryError`]
//! (docs/vendors/active-directory.md#result-codes).

use ldap3::{LdapError, LdapResult};

use crate::ports::DirectoryError;

pub(super) const SUCCESS: u32 = 0;
pub(super) const STRONG_AUTH_REQUIRED: u32 = 8;
pub(super) const NO_SUCH_ATTRIBUTE: u32 = 16;
pub(super) const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
pub(super) const NO_SUCH_OBJECT: u32 = 32;
pub(super) const INVALID_CREDENTIALS: u32 = 49;
pub(super) const UNWILLING_TO_PERFORM: u32 = 53;
pub(super) const ENTRY_ALREADY_EXISTS: u32 = 68;
pub(super) const OTHER: u32 = 80;

/// RFC 4511's name of a result code (appendix A.1).
pub(super) fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        _ => "unknown",
    }
}

/// A non-zero result of an operation on the directory's data.
pub(super) fn from_result(result: &LdapResult) -> DirectoryError {
    let code = rc_name(result.rc).to_string();
    let message = if result.text.is_empty() { code.clone() } else { result.text.trim_end_matches('\0').to_string() };
    match result.rc {
        NO_SUCH_OBJECT => DirectoryError::NotFound { code, message },
        // insufficientAccessRights, and the bind refusals (a bind result is mapped by
        // `from_bind` first; these are here for a bind the server asks again for).
        50 | 48 | INVALID_CREDENTIALS => DirectoryError::PermissionDenied { code, message },
        // busy, unavailable, timeLimitExceeded, adminLimitExceeded: the DC, not the request.
        51 | 52 => DirectoryError::Connection { message: format!("{code}: {message}") },
        3 | 11 => DirectoryError::Throttled { message: format!("{code}: {message}") },
        rc => DirectoryError::Refused { status: u16::try_from(rc).unwrap_or(u16::MAX), code, message },
    }
}

/// The result of the service account's bind: a refused password or account is
/// `PermissionDenied`; a DC that requires TLS for a simple bind is a configuration error.
pub(super) fn from_bind(result: &LdapResult) -> DirectoryError {
    match result.rc {
        STRONG_AUTH_REQUIRED | 13 => DirectoryError::Configuration {
            message: format!(
                "the DC refuses a simple bind without TLS ({}): use ldaps:// or ldap:// with StartTLS",
                result.text.trim_end_matches('\0')
            ),
        },
        INVALID_CREDENTIALS | 48 | 50 | UNWILLING_TO_PERFORM => DirectoryError::PermissionDenied {
            code: rc_name(result.rc).into(),
            message: format!("bind refused: {}", result.text.trim_end_matches('\0')),
        },
        _ => from_result(result),
    }
}

/// An error of the client library: the operation's own result, or the transport.
pub(super) fn from_ldap(error: LdapError) -> DirectoryError {
    match error {
        LdapError::LdapResult { result } => from_result(&result),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) | LdapError::DNSName { .. } => {
            DirectoryError::Configuration { message: format!("AD_LDAP_URL: {error}") }
        }
        LdapError::FilterParsing => DirectoryError::InvalidResponse { message: error.to_string() },
        other => DirectoryError::Connection { message: other.to_string() },
    }
}

/// Whether the connection behind the error is gone, so that the next call connects again.
pub(super) fn connection_lost(error: &LdapError) -> bool {
    matches!(
        error,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::EndOfStream
    )
}

/// `Ok` for rc 0, the mapped error otherwise.
pub(super) fn check(result: LdapResult) -> Result<LdapResult, DirectoryError> {
    if result.rc == SUCCESS { Ok(result) } else { Err(from_result(&result)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rc: u32, text: &str) -> LdapResult {
        LdapResult { rc, matched: String::new(), text: text.into(), refs: vec![], ctrls: vec![] }
    }

    #[test]
    fn result_codes_map_to_the_ports_errors() {
        assert!(matches!(from_result(&result(32, "no such")), DirectoryError::NotFound { .. }));
        assert!(matches!(from_result(&result(50, "")), DirectoryError::PermissionDenied { .. }));
        let refused = from_result(&result(19, "0000052D: Constraint violation"));
        assert_eq!(
            refused,
            DirectoryError::Refused {
                status: 19,
                code: "constraintViolation".into(),
                message: "0000052D: Constraint violation".into()
            }
        );
        assert!(matches!(from_result(&result(53, "")), DirectoryError::Refused { status: 53, .. }));
        assert!(matches!(from_bind(&result(49, "data 52e")), DirectoryError::PermissionDenied { .. }));
        assert!(matches!(from_bind(&result(8, "")), DirectoryError::Configuration { .. }));
        assert!(matches!(from_result(&result(51, "")), DirectoryError::Connection { .. }));
    }
}
