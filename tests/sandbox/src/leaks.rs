//! What to look for when checking that a secret did not leak: every form it takes on its
//! way out (base64 in a Basic header, percent-encoded in a form body) and back (JSON-escaped
//! when a simulator echoes it in an error body). Used by the integration and CLI secret tests.

use base64::Engine;

/// Every form `secret` may take on its way out and back.
pub fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    vec![
        secret.to_string(),
        b64.encode(secret),
        b64.encode(secret).trim_end_matches('=').to_string(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        form.clone(),
        form.replace('+', "%20"),
        json.trim_matches('"').to_string(),
        // Twice JSON-escaped: a message inside a JSON string stored as JSON text.
        serde_json::to_string(&json).unwrap_or_default().trim_matches('"').to_string(),
    ]
}

/// ConnectWise's Basic token, `base64(company+public:private)`, in its own forms, and the
/// credential pair it encodes.
pub fn basic_token(company: &str, public: &str, private: &str) -> Vec<String> {
    let pair = format!("{company}+{public}:{private}");
    let token = base64::engine::general_purpose::STANDARD.encode(&pair);
    forms(&token).into_iter().chain([pair]).collect()
}
