//! Where an HTTP notifier or intervention sends its request: a URL split into what the net
//! crate's HTTP client needs (scheme, host, port, path and query).

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
    /// escapes and IPv6 literals included). Errors name the URL and what is wrong.
    pub fn parse(url: &str) -> Result<Target, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("URL `{url}`: scheme `{other}` is not http or https")),
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("URL `{url}` has no host")),
        };
        let port = parsed.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let mut path = parsed.path().to_owned();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Target { tls, host, port, path })
    }

    /// The same server with another path (Alertmanager's `/api/v2/alerts`, Kubernetes paths).
    pub fn with_path(&self, path: &str) -> Target {
        debug_assert!(path.starts_with('/'));
        Target { path: path.to_owned(), ..self.clone() }
    }
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

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert!(Target::parse("ftp://x/y").unwrap_err().contains("scheme `ftp`"));
        assert!(Target::parse("not a url").unwrap_err().contains("invalid URL"));
    }
}
