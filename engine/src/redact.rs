//! Secrets shown as `***`: what CPRA writes for people and receivers (log lines, `validate` and
//! run diagnostics, alert text and every notifier's payload, and later the API) never repeats
//! a value that may be a credential, while the request on the wire keeps the real value.
//!
//! What is masked:
//! - every value that came from `${NAME}` expansion (the manifest's way to keep secrets out
//!   of files), wherever it appears in a text built from it;
//! - a URL's userinfo (`user:password@`) and every query-string and fragment value
//!   (`?token=***&page=***`): tokens travel there, and which ones do is not knowable;
//! - the values of headers that carry credentials (see [`is_credential_header`]).
//!
//! What it is for: the rules, as public functions, so every place that shows a value (the
//! loader, the alert renderer, the API of a later issue) masks alike. The loader computes the
//! masked forms once per monitor (`Monitor::shown`), never per check. What it is not for:
//! escaping control characters (`logging`), or the values sent (they stay as written).

use std::borrow::Cow;
use std::ops::Range;

/// What a masked value is shown as.
pub const MASK: &str = "***";

/// Whether a header named `name` carries a credential, so its value is shown as [`MASK`]:
/// `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`, any `*-Key`, and any
/// name with `token`, `secret` or `password` in it, case-insensitive.
pub fn is_credential_header(name: &str) -> bool {
    const EXACT: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];
    const WITHIN: [&str; 3] = ["token", "secret", "password"];
    let lower = name.trim().to_ascii_lowercase();
    EXACT.contains(&lower.as_str())
        || lower.ends_with("-key")
        || WITHIN.iter().any(|w| lower.contains(w))
}

/// The value of header `name` as shown: [`MASK`] for a credential header, else `value` with
/// the `expanded` values masked.
pub fn header_value<'a>(name: &str, value: &'a str, expanded: &[String]) -> Cow<'a, str> {
    if is_credential_header(name) {
        return Cow::Borrowed(MASK);
    }
    text(value, expanded)
}

/// `text` with every occurrence of each `expanded` value (the values `${NAME}` stood for)
/// replaced by [`MASK`]. Borrowed when nothing is masked. The longest values are masked
/// first, so one that contains another is masked whole.
pub fn text<'a>(text: &'a str, expanded: &[String]) -> Cow<'a, str> {
    if expanded.iter().all(|v| v.is_empty() || !text.contains(v.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut ranges = Vec::new();
    let mut by_length: Vec<&str> =
        expanded.iter().map(String::as_str).filter(|v| !v.is_empty()).collect();
    by_length.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in by_length {
        ranges.extend(text.match_indices(v).map(|(at, _)| at..at + v.len()));
    }
    Cow::Owned(mask_ranges(text, ranges))
}

/// `url` as shown: its userinfo and every query and fragment value masked, and the
/// `expanded` values masked wherever they are (a token in the path, a host from the
/// environment). Read as text, not parsed: a URL that does not parse is masked all the same.
pub fn url<'a>(url: &'a str, expanded: &[String]) -> Cow<'a, str> {
    let mut ranges = Vec::new();
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end =
        url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    if let Some(at) = url[authority_start..authority_end].rfind('@') {
        ranges.push(authority_start..authority_start + at);
    }
    if let Some(q) = url[authority_end..].find(['?', '#']).map(|i| authority_end + i) {
        // The query, then the fragment: `name=value` pairs split by `&` (or `;`); a part
        // without `=` is masked whole (it may be a bare token).
        let mut start = q + 1;
        for (i, c) in url[q + 1..].char_indices().map(|(i, c)| (q + 1 + i, c)) {
            if matches!(c, '&' | ';' | '#') {
                value_range(url, start..i, &mut ranges);
                start = i + 1;
            }
        }
        value_range(url, start..url.len(), &mut ranges);
    }
    for v in expanded.iter().filter(|v| !v.is_empty()) {
        ranges.extend(url.match_indices(v.as_str()).map(|(at, _)| at..at + v.len()));
    }
    if ranges.is_empty() {
        return Cow::Borrowed(url);
    }
    Cow::Owned(mask_ranges(url, ranges))
}

/// The range of the value in the query part `part` of `url` (after `=`, or all of it).
fn value_range(url: &str, part: Range<usize>, ranges: &mut Vec<Range<usize>>) {
    let value = match url[part.clone()].find('=') {
        Some(eq) => part.start + eq + 1..part.end,
        None => part,
    };
    if !value.is_empty() {
        ranges.push(value);
    }
}

/// `text` with each of `ranges` (byte ranges on char boundaries, in any order, overlapping or
/// not) replaced by [`MASK`]; overlapping and touching ranges become one mask.
fn mask_ranges(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut ranges = ranges.into_iter().peekable();
    while let Some(r) = ranges.next() {
        let mut end = r.end;
        while let Some(next) = ranges.next_if(|n| n.start <= end) {
            end = end.max(next.end);
        }
        if r.start >= at {
            out.push_str(&text[at..r.start]);
            out.push_str(MASK);
        }
        at = at.max(end);
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn urls_mask_userinfo_query_and_fragment_values_and_expanded_values() {
        let table: &[(&str, &[&str], &str)] = &[
            ("http://127.0.0.1:8080/health", &[], "http://127.0.0.1:8080/health"),
            (
                "http://127.0.0.1:8080/health?token=s3cret",
                &["s3cret"],
                "http://127.0.0.1:8080/health?token=***",
            ),
            // Query values are masked whether or not they came from the environment.
            ("https://h/p?a=1&b=&c&d=x=y", &[], "https://h/p?a=***&b=&***&d=***"),
            ("https://h/p?a=1;b=2#frag", &[], "https://h/p?a=***;b=***#***"),
            ("https://h/p#access_token=t", &[], "https://h/p#access_token=***"),
            ("http://user:PASSWORD@h:1/x", &[], "http://***@h:1/x"),
            ("http://user@h/x", &[], "http://***@h/x"),
            ("http://a@b@h/x?q=1", &[], "http://***@h/x?q=***"),
            // `@` after the authority is not userinfo.
            ("http://h/x@y", &[], "http://h/x@y"),
            // The environment's values wherever they are: path, host, and twice.
            ("https://hooks/T0/B0/xyz", &["xyz"], "https://hooks/T0/B0/***"),
            ("http://db.internal:5432/", &["db.internal"], "http://***:5432/"),
            ("http://h/k1/k1", &["k1"], "http://h/***/***"),
            // Touching and overlapping masks become one.
            ("http://h/ab", &["a", "b"], "http://h/***"),
            ("http://h/?t=abc", &["ab"], "http://h/?t=***"),
            // Not a URL: masked all the same.
            ("hooks.example.com/x?key=v", &[], "hooks.example.com/x?key=***"),
            ("", &[], ""),
            ("http://h/é?q=ü", &["é"], "http://h/***?q=***"),
        ];
        for (input, expanded, want) in table {
            assert_eq!(url(input, &s(expanded)), *want, "{input}");
        }
    }

    #[test]
    fn texts_mask_expanded_values_longest_first() {
        let table: &[(&str, &[&str], &str)] = &[
            ("db.internal:5432", &[], "db.internal:5432"),
            ("db.internal:5432", &["5432"], "db.internal:***"),
            ("'xxs3cret' is not a duration", &["s3cret"], "'xx***' is not a duration"),
            ("abcabc", &["abc", "abcabc"], "***"),
            ("nothing here", &["", "zz"], "nothing here"),
        ];
        for (input, expanded, want) in table {
            assert_eq!(text(input, &s(expanded)), *want, "{input}");
        }
        assert!(matches!(text("plain", &s(&["x"])), Cow::Borrowed(_)));
    }

    #[test]
    fn credential_headers_are_masked_whatever_their_value() {
        let table: &[(&str, bool)] = &[
            ("Authorization", true),
            ("authorization", true),
            ("Proxy-Authorization", true),
            ("Cookie", true),
            ("set-cookie", true),
            ("X-Api-Key", true),
            ("X-API-KEY", true),
            ("X-Auth-Token", true),
            ("TOKEN", true),
            ("X-Client-Secret", true),
            ("Accept", false),
            ("Content-Type", false),
            ("X-Keyboard", false),
            ("User-Agent", false),
        ];
        for (name, credential) in table {
            assert_eq!(is_credential_header(name), *credential, "{name}");
        }
        assert_eq!(header_value("Authorization", "Bearer x", &[]), MASK);
        assert_eq!(header_value("Accept", "text/plain", &[]), "text/plain");
        assert_eq!(header_value("X-Tenant", "t-${A}", &s(&["42"])), "t-${A}");
        assert_eq!(header_value("X-Tenant", "t-42", &s(&["42"])), "t-***");
    }
}
