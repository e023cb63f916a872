//! HaloPSA's error bodies, read once for the API client and the token endpoint.

use serde_json::Value;

use crate::adapters::vendor_http::ErrorBody;
use crate::http::HttpResponse;

/// HaloPSA's error bodies are heterogeneous: `{"resultCode","errorMessage"}`,
/// `{"ClassName","Message"}`, `{"Message"}`, OAuth `{"error"}`, or plain text.
pub(super) fn read_error(response: &HttpResponse) -> ErrorBody {
    let body = response.json().unwrap_or(Value::Null);
    let message = ["errorMessage", "Message", "message", "error_description", "error"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_str).filter(|t| !t.is_empty()))
        .map(str::to_string)
        .unwrap_or_else(|| response.body_excerpt());
    ErrorBody::message(message)
}
