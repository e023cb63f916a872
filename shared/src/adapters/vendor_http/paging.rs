//! One pager for every vendor list: where a page's rows are and how the next page is found.

use serde_json::Value;

use crate::http::HttpResponse;

/// A guard against a server that keeps announcing pages.
pub(crate) const MAX_PAGES: u64 = 100_000;

/// Where a page's rows are.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows {
    /// The body is the array (ConnectWise).
    Bare,
    /// The array under this key (`items`, `clients`, `data`).
    Under(&'static str),
}

/// How the next page is found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NextPage {
    /// The `Link` header's `rel="next"` target (ConnectWise).
    LinkHeader,
    /// An absolute URL in the body at this JSON pointer, null or empty on the last page
    /// (Autotask `/pageDetails/nextPageUrl`). The request, body included, is sent again to it.
    BodyUrl(&'static str),
    /// Numbered pages: the query parameter `param` counts from 1, and `is_last` reads the
    /// vendor's totals (HaloPSA `record_count`, IT Glue `meta.total-pages`).
    Numbered { param: &'static str, is_last: fn(&PageSeen<'_>) -> bool },
}

/// What a vendor's paging needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pager {
    pub rows: Rows,
    pub next: NextPage,
    /// Rows asked for per page (a page with fewer is the last one, for vendors without totals).
    pub page_size: u32,
}

/// One page as it arrived, for [`NextPage::Numbered`]'s `is_last`.
pub(crate) struct PageSeen<'a> {
    pub body: &'a Value,
    /// 1-based.
    pub number: u64,
    pub rows: usize,
    /// Rows on this page and every one before it.
    pub rows_so_far: u64,
    pub page_size: u32,
}

impl Rows {
    pub fn of<'a>(&self, body: &'a Value) -> Result<&'a Vec<Value>, String> {
        match self {
            Rows::Bare => body.as_array().ok_or_else(|| "expected a JSON array".to_string()),
            Rows::Under(key) => {
                body.get(*key).and_then(Value::as_array).ok_or_else(|| format!("response has no '{key}' array"))
            }
        }
    }
}

impl Pager {
    /// The next page's URL, `None` after the last page.
    pub fn next_url(
        &self,
        current: &url::Url,
        response: &HttpResponse,
        page: &PageSeen<'_>,
    ) -> Result<Option<url::Url>, String> {
        match self.next {
            NextPage::LinkHeader => match response.header("link").and_then(next_link) {
                Some(next) => current.join(&next).map(Some).map_err(|e| format!("bad Link header: {e}")),
                None => Ok(None),
            },
            NextPage::BodyUrl(pointer) => {
                match page.body.pointer(pointer).and_then(Value::as_str).filter(|u| !u.is_empty()) {
                    Some(next) => url::Url::parse(next).map(Some).map_err(|e| format!("bad next-page URL: {e}")),
                    None => Ok(None),
                }
            }
            NextPage::Numbered { param, is_last } => {
                if page.rows == 0 || is_last(page) {
                    return Ok(None);
                }
                Ok(Some(with_query_param(current, param, &(page.number + 1).to_string())))
            }
        }
    }
}

/// `url` with `key` set to `value` (replaced where it was, appended otherwise).
fn with_query_param(url: &url::Url, key: &str, value: &str) -> url::Url {
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    match pairs.iter_mut().find(|(k, _)| k == key) {
        Some(pair) => pair.1 = value.to_string(),
        None => pairs.push((key.to_string(), value.to_string())),
    }
    let mut next = url.clone();
    next.query_pairs_mut().clear().extend_pairs(pairs);
    next
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        (is_next && target.starts_with('<') && target.ends_with('>')).then(|| target[1..target.len() - 1].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let header = r#"<https://h/apis/3.0/x?page=1>; rel="first", <https://h/apis/3.0/x?page=3&pageSize=1000>; rel="next", <https://h/apis/3.0/x?page=9>; rel="last""#;
        assert_eq!(next_link(header).as_deref(), Some("https://h/apis/3.0/x?page=3&pageSize=1000"));
        assert_eq!(next_link(r#"<https://h/x?page=1>; rel="prev""#), None);
    }

    #[test]
    fn numbered_pages_replace_their_parameter() {
        let url = url::Url::parse("http://h/api/asset?client_id=1&page_no=1&page_size=2").unwrap();
        assert_eq!(
            with_query_param(&url, "page_no", "2").as_str(),
            "http://h/api/asset?client_id=1&page_no=2&page_size=2"
        );
        let url = url::Url::parse("http://h/x?page%5Bsize%5D=5").unwrap();
        assert_eq!(
            with_query_param(&url, "page[number]", "2").as_str(),
            "http://h/x?page%5Bsize%5D=5&page%5Bnumber%5D=2"
        );
    }
}
