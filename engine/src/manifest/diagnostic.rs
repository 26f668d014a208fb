//! Problems found in a manifest, written for the person at the terminal: where (file, line,
//! column, monitor, field path), what is wrong, and how to fix it.

use std::fmt;

use super::event::Pos;
use crate::limits::MAX_PROBLEMS;
use crate::logging::Escaped;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// What kind of problem; stable names for `--json` and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Syntax,
    Missing,
    WrongType,
    BadValue,
    BadDuration,
    UnknownType,
    UnknownKind,
    DuplicateId,
    UnknownReference,
    UnknownField,
    /// A field the Go CPRA reads and CPRA ignores (a warning).
    IgnoredField,
    /// A key given twice in one mapping, at any level.
    DuplicateKey,
    BadCron,
    BadTimezone,
    TimeoutOverInterval,
    UnsetVariable,
    /// The input could not be read to its end (an I/O or decompression error part-way).
    Unreadable,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Syntax => "syntax",
            Class::Missing => "missing_field",
            Class::WrongType => "wrong_type",
            Class::BadValue => "bad_value",
            Class::BadDuration => "bad_duration",
            Class::UnknownType => "unknown_type",
            Class::UnknownKind => "unknown_kind",
            Class::DuplicateId => "duplicate_id",
            Class::UnknownReference => "unknown_reference",
            Class::UnknownField => "unknown_field",
            Class::IgnoredField => "ignored_field",
            Class::DuplicateKey => "duplicate_key",
            Class::BadCron => "bad_cron",
            Class::BadTimezone => "bad_timezone",
            Class::TimeoutOverInterval => "timeout_over_interval",
            Class::UnsetVariable => "unset_variable",
            Class::Unreadable => "unreadable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub class: Class,
    pub file: String,
    pub pos: Pos,
    /// The monitor's name, or `#index` when it has none; `None` outside `monitors`.
    pub monitor: Option<String>,
    /// e.g. `monitors[12].pulse_check.type`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it (may be empty).
    pub hint: String,
}

/// `error: FILE:LINE:COLUMN: monitor 'NAME': MESSAGE at PATH; HINT` (the position, monitor,
/// path and hint only when known), the form editors and terminals turn into links. One line:
/// control characters a manifest put in a name, key or value are escaped.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.level.as_str(), Escaped(&self.file))?;
        if self.pos.line > 0 {
            write!(f, ":{}:{}", self.pos.line, self.pos.column)?;
        }
        f.write_str(": ")?;
        if let Some(m) = &self.monitor {
            write!(f, "monitor '{}': ", Escaped(m))?;
        }
        write!(f, "{}", Escaped(&self.message))?;
        if !self.path.is_empty() {
            write!(f, " at {}", Escaped(&self.path))?;
        }
        if !self.hint.is_empty() {
            write!(f, "; {}", Escaped(&self.hint))?;
        }
        Ok(())
    }
}

impl Diagnostic {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "severity": self.level.as_str(),
            "class": self.class.as_str(),
            "file": self.file,
            "line": self.pos.line,
            "column": self.pos.column,
            "monitor": self.monitor,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        })
    }
}

/// The problems of one load, bounded by [`MAX_PROBLEMS`].
#[derive(Clone, Debug, Default)]
pub struct Problems {
    pub kept: Vec<Diagnostic>,
    pub errors: usize,
    pub warnings: usize,
}

impl Problems {
    pub fn push(&mut self, d: Diagnostic) {
        match d.level {
            Level::Error => self.errors += 1,
            Level::Warning => self.warnings += 1,
        }
        // A syntax error ends the read, so it is the last problem and says why nothing after
        // it was checked: kept past the bound (one more at most).
        if self.kept.len() < MAX_PROBLEMS || d.class == Class::Syntax {
            self.kept.push(d);
        }
    }

    pub fn total(&self) -> usize {
        self.errors + self.warnings
    }
}

/// Levenshtein distance, for "did you mean". Inputs are short names; O(n*m) is fine.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a distance that still looks like a typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "expected one of a, b, c; did you mean 'b'?"
pub fn choices_hint(word: &str, candidates: &[&str]) -> String {
    let mut hint = format!("expected one of {}", candidates.join(", "));
    if let Some(m) = did_you_mean(word, candidates) {
        hint.push_str(&format!("; did you mean '{m}'?"));
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_suggestion() {
        assert_eq!(edit_distance("htp", "http"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(did_you_mean("htp", &["http", "tcp", "icmp"]), Some("http"));
        assert_eq!(did_you_mean("slak", &["slack", "log"]), Some("slack"));
        assert_eq!(did_you_mean("zzzzzz", &["http", "tcp"]), None);
    }

    #[test]
    fn problems_are_bounded_but_counted() {
        let mut p = Problems::default();
        for _ in 0..(MAX_PROBLEMS + 5) {
            p.push(Diagnostic {
                level: Level::Error,
                class: Class::Missing,
                file: "f".into(),
                pos: Pos::default(),
                monitor: None,
                path: String::new(),
                message: String::new(),
                hint: String::new(),
            });
        }
        assert_eq!(p.kept.len(), MAX_PROBLEMS);
        assert_eq!(p.errors, MAX_PROBLEMS + 5);
    }
}
