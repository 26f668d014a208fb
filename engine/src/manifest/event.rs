//! The format-neutral event stream both readers produce (YAML and JSON), with positions.
//!
//! The loader only ever sees these events, so YAML and JSON manifests go through one decoder
//! and give the same diagnostics. Not for writing manifests.

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One parse event. Keys of a mapping arrive as `Scalar` events like any value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MapStart {
        anchor: usize,
    },
    MapEnd,
    SeqStart {
        anchor: usize,
    },
    SeqEnd,
    /// `quoted` is false for YAML plain scalars and JSON numbers/`true`/`false`/`null`, so
    /// `"true"` stays a string while `true` is a boolean.
    Scalar {
        value: String,
        quoted: bool,
        anchor: usize,
    },
    /// A YAML alias (`*name`) to an anchor id given by an earlier event (0 = none).
    Alias(usize),
    /// The end of the input.
    End,
}

/// A syntax error: the input is not well-formed YAML/JSON, or cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// A pull reader of events.
pub trait EventSource {
    fn next_event(&mut self) -> Result<(Event, Pos), SyntaxError>;
}
