//! Building ConnectWise `conditions` values.

/// A string as a ConnectWise condition literal: double-quoted, with `"` and `\` escaped,
/// so a company called `Smith "Plumbing"` cannot end the literal and inject a condition.
/// (The whole `conditions` value is URL-encoded later by the URL builder.)
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for ch in value.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(quote("Contoso Dental"), r#""Contoso Dental""#);
        assert_eq!(quote(r#"Smith "Plumbing" or 1=1"#), r#""Smith \"Plumbing\" or 1=1""#);
        assert_eq!(quote(r"back\slash"), r#""back\\slash""#);
    }
}
