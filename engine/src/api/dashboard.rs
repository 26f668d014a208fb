//! The dashboard: `GET /` (and `/monitors/{id}`, the same page showing one monitor) serves a
//! page, a script and a style sheet compiled into the binary.
//!
//! What it is for: letting a person look at the fleet in a browser, on a machine without
//! internet. The files in `dashboard/` are plain HTML, CSS and JavaScript, served as they are
//! (no build step, nothing fetched from elsewhere); the page reads the JSON API like any
//! client (`/api/v1/summary`, `/api/v1/monitors?order=state`, `/api/v1/monitors/{id}`,
//! `/api/v1/incidents?monitor=ID`) and sends control requests with the token a person pastes.
//! Every file goes out with a Content-Security-Policy that allows this origin only, so even
//! a monitor name that carries markup cannot load or run anything (the script writes text,
//! never HTML, too). What it is not for: answering data (the API's) or holding a session (the
//! token stays in the browser's session storage).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY};
use hyper::{Response, StatusCode};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");
const ICON: &str = include_str!("dashboard/icon.svg");

/// This origin only: the page, its script, style and icon, and the API. No inline script or
/// style, no frames, no form posting elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One of the dashboard's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum File {
    Page,
    Script,
    Style,
    Icon,
}

impl File {
    /// The file a path names: the page for `/` and for `/monitors/{id}` (the page reads the id
    /// from its address), the others under `/ui/`.
    pub fn at(path: &str) -> Option<File> {
        match path {
            "/" => Some(File::Page),
            "/ui/app.js" => Some(File::Script),
            "/ui/style.css" => Some(File::Style),
            "/ui/icon.svg" => Some(File::Icon),
            _ => match path.strip_prefix("/monitors/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Some(File::Page),
                _ => None,
            },
        }
    }

    fn body_and_type(self) -> (&'static str, &'static str) {
        match self {
            File::Page => (PAGE, "text/html; charset=utf-8"),
            File::Script => (SCRIPT, "text/javascript; charset=utf-8"),
            File::Style => (STYLE, "text/css; charset=utf-8"),
            File::Icon => (ICON, "image/svg+xml"),
        }
    }
}

/// The bytes the dashboard sends a browser, all files together (said in docs/dashboard.md).
pub fn total_bytes() -> usize {
    [File::Page, File::Script, File::Style, File::Icon]
        .into_iter()
        .map(|f| f.body_and_type().0.len())
        .sum()
}

/// A file of the dashboard with its headers.
pub fn answer(file: File) -> Response<Full<Bytes>> {
    let (body, content_type) = file.body_and_type();
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    // Small files, revalidated each time: an upgraded binary's page is seen at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_fetch_nothing_from_another_origin() {
        for file in [File::Page, File::Script, File::Style, File::Icon] {
            let (body, _) = file.body_and_type();
            // The SVG namespace is a name, not a fetch.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(!body.contains("http://") && !body.contains("https://"), "{file:?}");
            assert!(!body.contains("//fonts.") && !body.contains("@import"), "{file:?}");
        }
        // No inline script or style in the page: the policy would block them.
        assert!(!PAGE.contains("<script>") && !PAGE.contains("style="));
        assert!(total_bytes() < 64 * 1024, "{} bytes", total_bytes());
    }

    #[test]
    fn the_docs_say_the_size_sent() {
        let n = total_bytes();
        let said = format!("{},{:03} bytes in all", n / 1000, n % 1000);
        let docs = include_str!("../../../docs/dashboard.md");
        assert!(docs.contains(&said), "docs/dashboard.md should say `{said}`");
    }
}
