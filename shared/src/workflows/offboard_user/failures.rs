//! How a directory or mailbox error becomes the run's: a failed read stops the run before
//! anything changes (`read_error`); a failed task is recorded with Offramp's code, the
//! vendor's code and its message, and the others go on (`directory_failure`).

use crate::error::{ErrorCode, OfframpError};
use crate::ports::DirectoryError;

/// A failed task: Offramp's code, the vendor's code, the vendor's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub code: ErrorCode,
    pub vendor_code: Option<String>,
    pub message: String,
}

pub(crate) fn directory_failure(error: &DirectoryError) -> Failure {
    let code = match error {
        DirectoryError::Connection { .. } | DirectoryError::InvalidResponse { .. } => {
            ErrorCode::DirectoryConnectionError
        }
        DirectoryError::Throttled { .. } => ErrorCode::RequestBudgetExhausted,
        DirectoryError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DirectoryError::Configuration { .. } => ErrorCode::ConfigurationError,
        _ => ErrorCode::ActionFailed,
    };
    Failure { code, vendor_code: error.code().map(str::to_string), message: error.to_string() }
}

/// A directory error met while reading, as the run's error.
pub(crate) fn read_error(what: &str, error: DirectoryError) -> OfframpError {
    let code = match &error {
        DirectoryError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
        DirectoryError::Configuration { .. } => ErrorCode::ConfigurationError,
        DirectoryError::Throttled { .. } => ErrorCode::RequestBudgetExhausted,
        _ => ErrorCode::DirectoryConnectionError,
    };
    OfframpError::new(code, format!("reading {what}: {error}; nothing was changed"))
}
