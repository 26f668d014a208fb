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
///
/// Events carry no text, so reading one allocates nothing: a `Scalar`'s text is read with
/// [`EventSource::scalar`] before the next event is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseEvent {
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
        quoted: bool,
        anchor: usize,
    },
    /// A YAML alias (`*name`) to an anchor id given by an earlier event (0 = none).
    Alias(usize),
    /// The end of the input.
    End,
}

/// How a [`SyntaxError`] that is really a read failure (an I/O or decompression error part-way
/// through: a truncated or corrupt file) starts its message, so the loader can tell it from a
/// syntax error and `cpra validate` / `cpra run` exit 2 (unreadable) rather than 1 (invalid).
pub const READ_FAILED: &str = "cannot read input";

/// A syntax error: the input is not well-formed YAML/JSON, or cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// A pull reader of events.
pub trait EventSource {
    fn next_event(&mut self) -> Result<(ParseEvent, Pos), SyntaxError>;

    /// The text of the last `Scalar` event returned (unspecified after any other event). It
    /// borrows the reader's buffer, so it is valid only until the next `next_event`.
    fn scalar(&self) -> &str;

    /// For a decoder that reads a whole item at once (`json_direct`): when the next item of
    /// the sequence being read is a mapping, the buffered input from its first byte, without
    /// consuming it. `None` when this source offers no raw bytes (YAML), at the end of the
    /// sequence, or before anything else: `next_event` then reads on as usual.
    fn raw_item(&mut self) -> Result<Option<RawItem<'_>>, SyntaxError> {
        Ok(None)
    }

    /// Buffers more of the item `raw_item` lent (keeping it whole): false when nothing more
    /// can be had (the input ended, or the item is past the buffer's bound).
    fn raw_more(&mut self) -> Result<bool, SyntaxError> {
        Ok(false)
    }

    /// Consumes the first `n` bytes of the item `raw_item` lent: the whole item, decoded.
    fn raw_consume(&mut self, _n: usize) {}
}

/// The buffered bytes of a sequence item (see [`EventSource::raw_item`]).
pub struct RawItem<'a> {
    /// From the item's first byte to the end of what is buffered.
    pub bytes: &'a [u8],
    /// Nothing follows `bytes` in the input.
    pub eof: bool,
    /// The position of its first byte.
    pub pos: Pos,
}

/// An event with its scalar's text (empty for other events): what tests and differential
/// checks compare. The loader never keeps events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub event: ParseEvent,
    pub text: String,
}

impl Owned {
    pub fn of(event: ParseEvent, text: &str) -> Owned {
        Owned { event, text: text.to_owned() }
    }
}

/// Every event of `src` before `End`, with texts; stops at the first error.
pub fn collect(src: &mut dyn EventSource) -> Result<Vec<(Owned, Pos)>, SyntaxError> {
    let mut out = Vec::new();
    loop {
        let (event, pos) = src.next_event()?;
        if event == ParseEvent::End {
            return Ok(out);
        }
        let text = if matches!(event, ParseEvent::Scalar { .. }) { src.scalar() } else { "" };
        out.push((Owned::of(event, text), pos));
    }
}
