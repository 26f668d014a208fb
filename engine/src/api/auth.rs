//! The API's bearer token: where it comes from, and the one check every write passes.
//!
//! What it is for: writes (every `POST`) change what the engine does, so they need
//! `Authorization: Bearer TOKEN` with the token given at start (`--api-token-file PATH`, else
//! the `CPRA_API_TOKEN` environment variable). The comparison is constant-time (`subtle`), so
//! the answer's timing says nothing about how much of a guess was right. Without a token
//! writes are refused (403) with the way to set one; reads stay open (bind to loopback, put a
//! proxy in front for more). What it is not for: reads, or users and roles.
//!
//! The token is never logged and never in an answer: [`ApiToken`]'s `Debug` hides it.

use std::path::Path;

use subtle::ConstantTimeEq;

/// The environment variable read for the token when no `--api-token-file` is given.
pub const TOKEN_ENV: &str = "CPRA_API_TOKEN";

/// Largest token file read: a token is tens of bytes; a bigger file is the wrong file.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The secret a write must present.
#[derive(Clone)]
pub struct ApiToken(Box<[u8]>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(hidden)")
    }
}

impl ApiToken {
    /// A token from its text (surrounding whitespace, such as a file's last newline, dropped).
    /// `None` for an empty one, or one with a character a header value cannot carry.
    pub fn new(text: &str) -> Option<ApiToken> {
        let t = text.trim();
        let printable = t.bytes().all(|b| b.is_ascii_graphic());
        (!t.is_empty() && printable).then(|| ApiToken(t.as_bytes().into()))
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_ref().ct_eq(presented))
    }
}

/// The token `cpra run` is given: `file` if set (it must be readable and hold one), else
/// [`TOKEN_ENV`] if set and not empty, else none (writes answer 403).
pub fn load_token(file: Option<&Path>) -> Result<Option<ApiToken>, String> {
    if let Some(path) = file {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("--api-token-file {shown}: cannot read: {e}"))?
            .len();
        if size > MAX_TOKEN_FILE_BYTES {
            return Err(format!(
                "--api-token-file {shown}: {size} bytes; a token file holds one token \
                 (at most {MAX_TOKEN_FILE_BYTES} bytes)"
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--api-token-file {shown}: cannot read: {e}"))?;
        return ApiToken::new(&text).map(Some).ok_or_else(|| {
            format!(
                "--api-token-file {shown}: no token in it (one line of printable ASCII, no \
                 spaces)"
            )
        });
    }
    match std::env::var(TOKEN_ENV) {
        Ok(text) if !text.trim().is_empty() => ApiToken::new(&text)
            .map(Some)
            .ok_or_else(|| format!("{TOKEN_ENV}: not a usable token (printable ASCII, no spaces)")),
        _ => Ok(None),
    }
}

/// Why a write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token configured: writes are off (403).
    NoToken,
    /// No `Authorization: Bearer` header, or the wrong token (401).
    Unauthorized,
}

impl Refusal {
    pub fn message(self) -> String {
        match self {
            Refusal::NoToken => format!(
                "writes are turned off: no API token is configured. Start cpra run with \
                 --api-token-file PATH (a file holding the token) or set {TOKEN_ENV}, then send \
                 `Authorization: Bearer TOKEN`"
            ),
            Refusal::Unauthorized => {
                "missing or wrong token: send `Authorization: Bearer TOKEN` with the token \
                 cpra run was given"
                    .to_string()
            }
        }
    }
}

/// Checks a write's `Authorization` header against the configured token.
pub fn authorize(token: Option<&ApiToken>, authorization: Option<&[u8]>) -> Result<(), Refusal> {
    let Some(token) = token else { return Err(Refusal::NoToken) };
    let presented = authorization
        .and_then(|h| {
            let (scheme, rest) = h.split_at(h.len().min(7));
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
        })
        .map(|rest| rest.trim_ascii());
    match presented {
        Some(p) if token.matches(p) => Ok(()),
        _ => Err(Refusal::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_bearer_token_passes() {
        let token = ApiToken::new("s3cret-token\n").unwrap();
        assert_eq!(authorize(Some(&token), Some(b"Bearer s3cret-token")), Ok(()));
        assert_eq!(authorize(Some(&token), Some(b"bearer s3cret-token")), Ok(()));
        for wrong in [&b"Bearer s3cret-toke"[..], b"Bearer s3cret-token2", b"s3cret-token", b""] {
            assert_eq!(authorize(Some(&token), Some(wrong)), Err(Refusal::Unauthorized));
        }
        assert_eq!(authorize(Some(&token), None), Err(Refusal::Unauthorized));
        assert_eq!(authorize(None, Some(b"Bearer s3cret-token")), Err(Refusal::NoToken));
        assert!(Refusal::NoToken.message().contains("--api-token-file"));
        assert!(!format!("{token:?}").contains("s3cret"), "Debug hides the token");
        assert!(ApiToken::new("  \n").is_none());
        assert!(ApiToken::new("two words").is_none());
    }

    #[test]
    fn a_token_file_is_read_or_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let token = load_token(Some(&path)).unwrap().unwrap();
        assert!(token.matches(b"abc123"));
        std::fs::write(&path, "\n").unwrap();
        let e = load_token(Some(&path)).unwrap_err();
        assert!(e.contains("--api-token-file") && e.contains("no token"), "{e}");
        let e = load_token(Some(&dir.path().join("missing"))).unwrap_err();
        assert!(e.contains("missing") && e.contains("cannot read"), "{e}");
    }
}
