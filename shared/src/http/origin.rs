//! Where credentials may travel: https, or plain http to this machine (the sandbox), and
//! only to the host the deployment configured. Vendor clients check their base URLs here
//! when they are built (a refusal is a `ConfigurationError` at start), and the HTTP layer
//! checks every request again before it is sent.

use url::{Host, Url};

/// Whether `url` names this machine: `127.0.0.0/8`, `::1` or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `host[:port]` of `url`, for messages: never the user name, password, path or query.
pub fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => "(no host)".to_string(),
    }
}

/// Whether a request to `url` may carry credentials: https, or http to a loopback address.
pub fn transport_allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(url),
        _ => false,
    }
}

/// A vendor URL from the setting `setting`: parsed, and refused unless [`transport_allowed`]
/// and free of a user name or password. The message names the setting and the host only.
pub fn secure_url(setting: &str, raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{setting} is not a valid URL: {e}"))?;
    if !transport_allowed(&url) {
        return Err(format!(
            "{setting} must be an https URL (plain http only to a loopback address), not {}://{}",
            url.scheme(),
            host_of(&url)
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{setting} must not carry a user name or password (host {})", host_of(&url)));
    }
    Ok(url)
}

/// Whether `next` has the scheme, host and port of `base`: a page link a vendor returns
/// is followed with the vendor's credentials, so it must not lead anywhere else.
pub fn same_origin(base: &Url, next: &Url) -> bool {
    base.origin() == next.origin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for allowed in [
            "https://api.itglue.com",
            "http://127.0.0.1:8080/x",
            "http://127.9.9.9/x",
            "http://[::1]:80/x",
            "http://LOCALHOST/x",
        ] {
            assert!(transport_allowed(&url(allowed)), "{allowed}");
        }
        for refused in ["http://api.itglue.com", "http://10.0.0.1/x", "http://[::2]/x", "ftp://127.0.0.1/x"] {
            assert!(!transport_allowed(&url(refused)), "{refused}");
        }
    }

    #[test]
    fn secure_url_names_the_setting_and_host_only() {
        let err = secure_url("CONNECTWISE_URL", "http://na.myconnectwise.net/v4_6_release/apis/3.0?key=k").unwrap_err();
        assert_eq!(
            err,
            "CONNECTWISE_URL must be an https URL (plain http only to a loopback address), not http://na.myconnectwise.net"
        );
        let err = secure_url("HALO_URL", "https://user:pa55@acme.halopsa.com").unwrap_err();
        assert!(err.contains("acme.halopsa.com") && !err.contains("pa55"), "{err}");
        assert!(secure_url("HALO_URL", " https://acme.halopsa.com ").is_ok());
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let base = url("https://h.example/api/");
        assert!(same_origin(&base, &url("https://h.example/api/x?page=2")));
        assert!(same_origin(&base, &url("https://h.example:443/other")));
        assert!(!same_origin(&base, &url("http://h.example/api/x")));
        assert!(!same_origin(&base, &url("https://h.example:8443/api/x")));
        assert!(!same_origin(&base, &url("https://evil.example/api/x")));
    }
}
