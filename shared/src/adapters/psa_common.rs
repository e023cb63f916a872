//! Small pieces every PSA adapter needs in the same form.

use crate::domain::Company;
use crate::error::PsaError;

pub(crate) fn config_error(message: impl Into<String>) -> PsaError {
    PsaError::Configuration { message: message.into() }
}

/// `url` with a trailing `/`, so that `join` appends to its path instead of replacing the last segment.
pub(crate) fn with_trailing_slash(mut url: url::Url) -> url::Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// A record id as the three PSAs use them: a positive integer. Anything else is refused
/// before a request is built, so no input can reach a URL or a filter unchecked.
pub(crate) fn positive_id(id: &str, vendor: &str, what: &str) -> Result<i64, PsaError> {
    id.trim().parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| PsaError::InvalidId {
        message: format!("'{id}' is not a {vendor} {what} id (a positive integer)"),
    })
}

/// Keep the companies named exactly `name`, ignoring case and surrounding spaces (vendor
/// name filters may be case-sensitive, substring or fuzzy: the answer is checked here).
pub(crate) fn exactly_named(companies: Vec<Result<Company, PsaError>>, name: &str) -> Result<Vec<Company>, PsaError> {
    let wanted = name.trim().to_lowercase();
    companies.into_iter().filter(|c| c.as_ref().map_or(true, |c| c.name.trim().to_lowercase() == wanted)).collect()
}
