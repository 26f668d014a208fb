//! Where an HTTP request goes: a URL split into what the net crate's HTTP client needs
//! (scheme, host, port, path and query), for probes, notifiers and interventions alike, and
//! the `host[:port]` of a mail server. Every address of the engine is parsed here, by the
//! `url` crate, and nowhere else (the loader's checks call the same crate).

/// An `http`/`https` URL, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `url` (with the `url` crate: URLs from manifests carry every oddity, percent
    /// escapes and IPv6 literals included). Errors say what is wrong without repeating the
    /// URL: it may carry a token or a secret query value, and the loader's message already
    /// names the field.
    pub fn parse(url: &str) -> Result<Target, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("URL scheme `{other}` is not http or https")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("credentials in the URL are not supported (use headers)".to_owned());
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("the URL has no host".to_owned()),
        };
        let port = parsed.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let path = parsed[url::Position::BeforePath..url::Position::AfterQuery].to_owned();
        Ok(Target { tls, host, port, path })
    }

    /// The same server with another path (Alertmanager's `/api/v2/alerts`, Kubernetes paths).
    pub fn with_path(&self, path: &str) -> Target {
        debug_assert!(path.starts_with('/'));
        Target { path: path.to_owned(), ..self.clone() }
    }
}

/// An `http`/`https` URL's parts borrowed from it, for what reads a URL per check (a plain
/// check reads its monitor's URL each time rather than keep its parts): no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetRef<'a> {
    pub tls: bool,
    /// Host name or dotted IPv4 address.
    pub host: &'a str,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: &'a str,
}

impl<'a> TargetRef<'a> {
    /// Splits `url` when it is already written the way the `url` crate writes it back, so its
    /// parts are exactly [`Target::parse`]'s: `http://` or `https://`, a lower-case host name
    /// (letters, digits, `-`, non-empty labels, no IDNA `xn--` label, not ending in a number)
    /// or a dotted IPv4 address as `Ipv4Addr` writes it, an optional port, and a path and
    /// query of characters the crate keeps as they are, without dot segments. Any other URL
    /// (IPv6, upper case, characters to escape, ...) gives `None`, and the caller takes
    /// [`Target::parse`]. It validates nothing: that stays `Target::parse`'s, which the loader
    /// ran on every URL this reads.
    pub fn split(url: &'a str) -> Option<TargetRef<'a>> {
        let (tls, rest) = match url.strip_prefix("http://") {
            Some(rest) => (false, rest),
            None => (true, url.strip_prefix("https://")?),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (host, port) = match authority.split_once(':') {
            None => (authority, if tls { 443 } else { 80 }),
            Some((host, port)) => {
                if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (host, port.parse().ok()?)
            }
        };
        if !normal_host(host) {
            return None;
        }
        let path = &tail[..tail.find('#').unwrap_or(tail.len())];
        let path = match path {
            "" => "/",
            p if p.starts_with('/') && normal_path(p) => p,
            _ => return None,
        };
        Some(TargetRef { tls, host, port, path })
    }
}

/// A host the `url` crate writes back as it is (see [`TargetRef::split`]).
fn normal_host(host: &str) -> bool {
    let well_formed = host.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with("xn--")
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !well_formed {
        return false;
    }
    let last = host.rsplit('.').next().unwrap_or("");
    // A host ending in a number is an IPv4 address to the crate, which it rewrites unless it
    // is already dotted-decimal without leading zeros (which `Ipv4Addr` refuses).
    let numeric = last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x");
    !numeric || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// A path and query the `url` crate keeps as they are: unreserved and sub-delimiter
/// characters (but `'`, which it escapes in a query), `:`, `@`, `/`, `%`, `?` (the query), and
/// no `.` or `..` segment (which it resolves), escaped or not.
fn normal_path(path_and_query: &str) -> bool {
    let kept = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/%?".contains(&b);
    let path = &path_and_query[..path_and_query.find('?').unwrap_or(path_and_query.len())];
    path_and_query.bytes().all(kept)
        && !path.split('/').any(|segment| segment == "." || segment == "..")
        && !path.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'2' && w[2] | 0x20 == b'e')
}

/// `base` with `segments` appended to its path, each percent-encoded as one segment (an
/// Opsgenie alias has a `#`), and `query` when given, by the `url` crate. A `base` that does
/// not parse, or cannot take a path, is returned as it is, so [`Target::parse`] reports it as
/// the manifest wrote it (and a secret segment, like a bot token, never reaches the message).
pub fn join(base: &str, segments: &[&str], query: Option<&str>) -> String {
    let Ok(mut url) = url::Url::parse(base) else {
        return base.to_owned();
    };
    match url.path_segments_mut() {
        Ok(mut path) => {
            path.pop_if_empty().extend(segments);
        }
        Err(()) => return base.to_owned(),
    }
    if query.is_some() {
        url.set_query(query);
    }
    url.into()
}

/// Whether the path of URL `base` ends with `tail` (e.g. `/api/v2/alerts`), a trailing `/`
/// ignored. False when `base` does not parse.
pub fn path_ends_with(base: &str, tail: &str) -> bool {
    url::Url::parse(base).is_ok_and(|u| u.path().trim_end_matches('/').ends_with(tail))
}

/// The host (IPv6 without brackets) and port of `text`, written `host[:port]` (`[v6]:port`
/// for IPv6), `default_port` when it names none. Parsed by the `url` crate as the authority of
/// a URL, so it accepts and refuses exactly what a URL's host and port would.
pub fn host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let text = text.trim();
    // A scheme the `url` crate knows nothing special about: the authority is parsed as is.
    let parsed =
        url::Url::parse(&format!("cpra://{text}")).map_err(|e| format!("not host[:port]: {e}"))?;
    let bare = parsed.path().is_empty()
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    let host = match parsed.host() {
        Some(_) if !bare => None,
        Some(url::Host::Domain(d)) if !d.is_empty() => Some(d.to_owned()),
        Some(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Some(ip.to_string()),
        _ => None,
    };
    // The text is not repeated: `user:password@host` is a mistake that carries a secret.
    let host = host.ok_or_else(|| "not host[:port] (no user, path or query)".to_owned())?;
    Ok((host, parsed.port().unwrap_or(default_port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let t = Target::parse("https://hooks.slack.com/services/T0/B0/xyz?a=1").unwrap();
        assert_eq!(
            t,
            Target {
                tls: true,
                host: "hooks.slack.com".into(),
                port: 443,
                path: "/services/T0/B0/xyz?a=1".into()
            }
        );
        let t = Target::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 9093, "/")
        );
        let t = Target::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(t.host, "::1");
    }

    /// What `TargetRef::split` splits, it splits as `Target::parse` does; what it cannot
    /// (the crate would rewrite it), it leaves to `Target::parse`.
    #[test]
    fn a_borrowed_split_gives_the_parts_parse_gives_or_none() {
        let split = [
            "http://127.0.0.1:18080/",
            "http://127.0.0.1:18080",
            "http://10.1.2.3/health?x=1&y=a%20b",
            "https://api.example.com/h?x=1",
            "https://api.example.com:8443",
            "http://svc-1.internal.example:80/a/b;c=d/e:f@g~h!$&()*+,",
            "http://host/p#fragment",
            "http://host:0080/p",
            "http://a.b/.well-known/x",
            "http://a.b/%zz/%41",
            "http://a.b/q?a=/b?c",
            "http://host.1a/",
        ];
        let left = [
            "http://[::1]:9000/a",
            "HTTP://example.com/",
            "http://Example.com/",
            "http://example.com/a b",
            "http://example.com/%7Ea b?q=1",
            "http://h?q",
            "http://example.com/a/../b",
            "http://example.com/a/./b",
            "http://example.com/a/%2E%2e/b",
            "http://example.com/a\\b",
            "http://example.com/?q='x'",
            "http://example.com/{x}",
            "http://127.0.0.01/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://1.2.3.4.5/",
            "http://xn--nxasmq6b.com/",
            "http://a..b/",
            "http://example.com./",
            "http://example.com:/",
            "http://example.com:+80/",
            "http://user@example.com/",
            " http://example.com/",
            "ftp://example.com/",
            "http:///example.com/",
        ];
        for url in split {
            let t = Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let r = TargetRef::split(url).unwrap_or_else(|| panic!("{url} not split"));
            assert_eq!(
                (r.tls, r.host, r.port, r.path),
                (t.tls, t.host.as_str(), t.port, t.path.as_str()),
                "{url}"
            );
        }
        for url in left {
            assert_eq!(TargetRef::split(url), None, "{url}");
        }
    }

    #[test]
    fn joins_encode_each_segment() {
        assert_eq!(
            join("http://127.0.0.1:9/v2/alerts/", &["cpra:a b/c#1%", "close"], Some("x=1")),
            "http://127.0.0.1:9/v2/alerts/cpra:a%20b%2Fc%231%25/close?x=1"
        );
        assert_eq!(
            join("https://api.telegram.org", &["bot1:a", "sendMessage"], None),
            "https://api.telegram.org/bot1:a/sendMessage"
        );
        assert_eq!(join("hooks.slack.com/x", &["secret"], None), "hooks.slack.com/x");
        assert!(path_ends_with("http://am:9093/api/v2/alerts/", "/api/v2/alerts"));
        assert!(!path_ends_with("http://am:9093/", "/api/v2/alerts"));
        assert!(!path_ends_with("not a URL/api/v2/alerts", "/api/v2/alerts"));
    }

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("smtp.example.com", 587).unwrap(), ("smtp.example.com".into(), 587));
        assert_eq!(host_port("127.0.0.1:2525", 587).unwrap(), ("127.0.0.1".into(), 2525));
        assert_eq!(host_port("[::1]:25", 587).unwrap(), ("::1".into(), 25));
        for bad in ["", "host:port", "host:70000", "user@host", "host/path", "::1:25"] {
            assert!(host_port(bad, 587).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalises_what_the_url_crate_normalises() {
        let t = Target::parse("HTTP://Example.COM:80/%7Ea b?q=1#frag").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "example.com", 80, "/%7Ea%20b?q=1")
        );
        assert_eq!(Target::parse("http://h?q").unwrap().path, "/?q");
    }

    #[test]
    fn refuses_other_schemes_garbage_and_credentials_without_repeating_the_url() {
        assert!(Target::parse("ftp://x/y").unwrap_err().contains("scheme `ftp`"));
        assert!(Target::parse("not a url").unwrap_err().contains("invalid URL"));
        assert!(Target::parse("hooks.slack.com/services/x").is_err(), "no scheme");
        assert!(Target::parse("http://h:99999/").unwrap_err().contains("port"));
        assert!(Target::parse("http://").unwrap_err().contains("host"));
        let secret = Target::parse("https://user:hunter2@h/").unwrap_err();
        assert!(secret.contains("credentials") && !secret.contains("hunter2"), "{secret}");
        let secret = Target::parse("https://h:99999/?token=hunter2").unwrap_err();
        assert!(!secret.contains("hunter2"), "{secret}");
    }
}
