//! `${NAME}` in a string value is replaced by the environment variable NAME, so secrets stay
//! out of manifests. An unset variable is an error naming it; `$${` writes a literal `${`.

/// Where variables come from: the process environment, or a fixed map (tests, tools).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Expand `${NAME}`. On an unset variable, returns its name as the error. Each value
/// substituted is added to `substituted` unless already there, so what is shown of the manifest
/// can mask it (`crate::redact`).
pub fn expand(
    value: &str,
    env: &dyn Env,
    substituted: &mut Vec<String>,
) -> Result<Option<String>, ExpandError> {
    // A byte scan first: `contains("${")` sets up a substring searcher, which costs more
    // than this scan, and it runs on every value of every monitor.
    if !value.as_bytes().contains(&b'$') || !value.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(ExpandError::Unclosed);
            };
            let name = &tail[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ExpandError::BadName(name.to_string()));
            }
            match env.var(name) {
                Some(v) => {
                    out.push_str(&v);
                    if !substituted.contains(&v) {
                        substituted.push(v);
                    }
                }
                None => return Err(ExpandError::Unset(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandError {
    Unset(String),
    BadName(String),
    Unclosed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn expands_and_reports() {
        let mut env = HashMap::new();
        env.insert("TOKEN".to_string(), "s3cret".to_string());
        let mut seen = Vec::new();
        assert_eq!(expand("plain", &env, &mut seen), Ok(None));
        assert_eq!(expand("$${TOKEN} $5", &env, &mut seen), Ok(Some("${TOKEN} $5".into())));
        assert!(seen.is_empty(), "nothing substituted yet");
        assert_eq!(expand("Bearer ${TOKEN}!", &env, &mut seen), Ok(Some("Bearer s3cret!".into())));
        assert_eq!(expand("${TOKEN}${TOKEN}", &env, &mut seen), Ok(Some("s3crets3cret".into())));
        assert_eq!(seen, ["s3cret"], "each value substituted, once");
        assert_eq!(expand("${NOPE}", &env, &mut seen), Err(ExpandError::Unset("NOPE".into())));
        assert_eq!(expand("${A-B}", &env, &mut seen), Err(ExpandError::BadName("A-B".into())));
        assert_eq!(expand("${OPEN", &env, &mut seen), Err(ExpandError::Unclosed));
    }
}
