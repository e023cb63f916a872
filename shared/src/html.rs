//! Text into HTML: what the approval page renders and what HaloPSA's notes (`note_html`)
//! carry. One escaper, so a name or a reason can never become markup in either.

/// HTML-escape text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// [`escape`], with every character a reader could not see shown as its code point
/// (`[U+202E]`) instead: control characters other than line breaks and tabs, and those
/// `hidden` says are invisible (Unicode format characters: bidi overrides, zero-width). For
/// vendor text in a document people sign off on (the evidence report, docs/evidence.md):
/// a name stored reversed by a bidi override reads as stored, and says so.
pub fn escape_visible(text: &str, hidden: impl Fn(char) -> bool) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\n' && c != '\t') || hidden(c) {
            shown.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    escape(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_text_and_hidden_characters_are_shown() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
        let shown = escape_visible("Dana\u{202E}<b>\u{0007}", |c| c == '\u{202E}');
        assert_eq!(shown, "Dana[U+202E]&lt;b&gt;[U+0007]");
    }
}
