//! A fast scanner for the block YAML that manifests actually use, with saphyr as the fallback.
//!
//! Why hand-written: saphyr-parser (the well-kept crate behind [`YamlReader`]) decodes the
//! input char by char through several layers of buffering and was measured at ~59k monitors
//! per CPU-second for its bare event stream here, so no decoding speed-up could reach the
//! 100k monitors/s load target while it scans. This scanner works a line at a time on bytes.
//!
//! What it is for: emitting exactly the events (kind, `quoted`, anchor id, text, position)
//! that [`YamlReader`] emits, for block mappings and sequences (compact `- key: v` nesting,
//! sequences at their parent key's indent), one-line flow collections, one-line plain /
//! single- / double-quoted scalars, literal and folded block scalars (`|`, `>`, with `-`/`+`),
//! comments, a leading `---`, empty values, anchors, aliases.
//! What it is not for: anything else (tags, directives, several documents, multi-line plain
//! or quoted scalars, block scalars with an indentation digit or more-indented folded lines,
//! `?` keys, tabs, a CR not before a LF, invalid UTF-8, malformed input). On such
//! input it does not fail: it reports "unsupported" before handing out any event that depends
//! on it, and [`FastYaml`] re-reads the input from the start with saphyr, skips the events
//! already handed out (identical by construction) and continues from saphyr. So exotic YAML
//! loads exactly as before, and malformed YAML gets saphyr's own message and position.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};

use super::event::{EventSource, ParseEvent, Pos, SyntaxError, READ_FAILED};
use super::yaml::YamlReader;
use crate::limits::{
    MAX_KEY_BYTES, MAX_SCALAR_BYTES, MAX_SCAN_ANCHORS, MAX_SCAN_DEPTH, SCAN_BUFFER_BYTES,
};

/// Events handed out before the queue is compacted: bounds the queue (and its texts) to a
/// few lines' worth while copying it rarely.
const COMPACT_AFTER_EVENTS: usize = 64;

/// The input uses YAML the scanner does not handle (or is malformed): read it with saphyr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

type Step<T = ()> = Result<T, Unsupported>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    kind: Kind,
    /// Byte column (0-based) of the block's keys or dashes; indentation is ASCII spaces, so
    /// it is also the character column.
    indent: usize,
    /// A sequence at its parent key's indent (`key:\n- a`): it ends at a line at that indent
    /// that is not a `-` entry.
    indentless: bool,
}

#[derive(Clone, Copy, Debug)]
enum Awaiting {
    /// A `key:` with nothing after it on its line, in the mapping at this indent.
    MapValue(usize),
    /// A `-` with nothing after it on its line, in the sequence at this indent.
    SeqItem(usize),
}

/// Where a block node starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The document's root.
    Root,
    /// After a `-` on the same line.
    AfterDash,
    /// On the line after a `key:` or `-` that left it for later.
    NextLine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chomp {
    Clip,
    Strip,
    Keep,
}

/// A block scalar (`|` or `>`) being read, line by line.
#[derive(Clone, Copy, Debug)]
struct BlockScalar {
    folded: bool,
    chomp: Chomp,
    /// Content must be indented more than the enclosing block.
    min_indent: usize,
    /// The content's indent, set by its first non-blank line.
    indent: Option<usize>,
    /// The most spaces on a blank line before the first content line (saphyr refuses more
    /// than the content's indent).
    leading_blank_spaces: usize,
    /// Line breaks since the last content line (its own included), or blank lines so far.
    breaks: usize,
    has_content: bool,
    pos: Pos,
    anchor: usize,
}

/// A node whose content starts on a later line (or is empty).
#[derive(Clone, Copy, Debug)]
struct Pending {
    awaiting: Awaiting,
    /// Where saphyr puts the empty scalar if nothing follows.
    null_pos: Pos,
    /// An anchor written before the line ended (`key: &a`), and where it was.
    anchor: usize,
    anchor_pos: Pos,
}

#[derive(Clone, Copy, Debug)]
struct Queued {
    event: ParseEvent,
    pos: Pos,
    /// The scalar's text in `texts`.
    text: (usize, usize),
}

/// A scalar read from a line, not yet queued (its key/value role is known only after it).
#[derive(Clone, Copy)]
struct ScalarTok {
    quoted: bool,
    text: (usize, usize),
    pos: Pos,
}

/// The scanner alone: events, or [`Unsupported`].
pub struct YamlScanner<R: Read> {
    reader: R,
    buf: Vec<u8>,
    /// Next unread byte and end of the read bytes in `buf`.
    start: usize,
    filled: usize,
    eof: bool,
    /// 1-based number of the last line read.
    line_no: u32,
    /// Events of processed lines. Those of the last processed line are held back (`safe`)
    /// until the next content line shows they are complete (a plain scalar could continue).
    events: Vec<Queued>,
    head: usize,
    safe: usize,
    /// Scalar texts of the queued events.
    texts: String,
    current: (usize, usize),
    stack: Vec<Block>,
    pending: Option<Pending>,
    anchors: HashMap<String, usize>,
    next_anchor: usize,
    /// A `---` was read before any content.
    doc_start: bool,
    /// The root node has started.
    started: bool,
    finished: bool,
    /// The current line is ASCII, so byte columns are character columns.
    line_ascii: bool,
    /// The last line read had no `\n` (the input's end).
    unterminated: bool,
    /// A block scalar being read, and its text so far.
    block: Option<BlockScalar>,
    block_text: String,
}

fn is_flow(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

impl<R: Read> YamlScanner<R> {
    pub fn new(reader: R) -> Self {
        YamlScanner {
            reader,
            buf: vec![0; SCAN_BUFFER_BYTES],
            start: 0,
            filled: 0,
            eof: false,
            line_no: 0,
            events: Vec::with_capacity(64),
            head: 0,
            safe: 0,
            texts: String::with_capacity(1024),
            current: (0, 0),
            stack: Vec::with_capacity(MAX_SCAN_DEPTH),
            pending: None,
            anchors: HashMap::new(),
            next_anchor: 1,
            doc_start: false,
            started: false,
            finished: false,
            line_ascii: true,
            unterminated: false,
            block: None,
            block_text: String::new(),
        }
    }

    /// The next event, or `Unsupported` (after which the scanner must not be used again).
    #[inline]
    pub fn next_event(&mut self) -> Step<(ParseEvent, Pos)> {
        loop {
            if let Some(q) = self.pop_ready() {
                return Ok((q.event, q.pos));
            }
            if !self.refill()? {
                return Ok((ParseEvent::End, Pos::default()));
            }
        }
    }

    /// The next event if one is ready, without reading: the per-event hot path. It lends the
    /// queued event rather than returning a new `Result`, which the optimiser was assembling
    /// on the stack with a store-forwarding stall per event.
    #[inline]
    fn pop_ready(&mut self) -> Option<&Queued> {
        if self.head == self.safe {
            return None;
        }
        let q = &self.events[self.head];
        self.head += 1;
        self.current = q.text;
        Some(q)
    }

    /// Read lines until an event is safe to hand out; false once the input is done with.
    #[inline(never)]
    fn refill(&mut self) -> Step<bool> {
        while self.head == self.safe {
            if self.finished {
                return Ok(false);
            }
            self.compact();
            self.advance()?;
        }
        Ok(true)
    }

    pub fn text(&self) -> &str {
        self.texts.get(self.current.0..self.current.1).unwrap_or("")
    }

    /// Drop the events already handed out (and their texts).
    fn compact(&mut self) {
        // Compacting after every line costs a copy per line; every few dozen events is enough
        // to keep the queue and its texts a few lines long.
        if self.head < COMPACT_AFTER_EVENTS {
            return;
        }
        let is_scalar = |q: &Queued| matches!(q.event, ParseEvent::Scalar { .. });
        let cut = self.events[self.head..]
            .iter()
            .filter(|q| is_scalar(q))
            .map(|q| q.text.0)
            .min()
            .unwrap_or(self.texts.len())
            .min(self.texts.len());
        self.events.drain(..self.head);
        self.texts.drain(..cut);
        for q in self.events.iter_mut().filter(|q| is_scalar(q)) {
            q.text.0 -= cut;
            q.text.1 -= cut;
        }
        debug_assert!(self.events.iter().all(|q| q.text.1 <= self.texts.len()));
        self.safe -= self.head;
        self.head = 0;
    }

    /// Process lines until one with content (or the end): the events before it become safe.
    fn advance(&mut self) -> Step {
        loop {
            let before = self.events.len();
            match self.next_line()? {
                None => {
                    self.finish()?;
                    self.safe = self.events.len();
                    self.finished = true;
                    return Ok(());
                }
                Some((a, b)) => {
                    let buf = std::mem::take(&mut self.buf);
                    let r = self.line(&buf[a..b]);
                    self.buf = buf;
                    let content = r?;
                    if content {
                        // This line's events wait for the next content line.
                        self.safe = before;
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The next line's byte range in `buf` (without its `\n`). One pass finds its end and
    /// whether it is printable ASCII (`line_ascii`); a control character (tab, CR, ...) in it
    /// is unsupported.
    fn next_line(&mut self) -> Step<Option<(usize, usize)>> {
        loop {
            let unread = &self.buf[self.start..self.filled];
            let mut high = 0u8;
            let mut i = printable_ascii_prefix(unread);
            while i < unread.len() {
                let c = unread[i];
                if c < 0x20 || c == 0x7f {
                    break;
                }
                high |= c;
                i += 1;
            }
            // A CR is a line end only before a LF (Windows files); elsewhere it is saphyr's.
            let crlf = i + 1 < unread.len() && unread[i] == b'\r' && unread[i + 1] == b'\n';
            if i < unread.len() && (unread[i] == b'\n' || crlf) {
                self.line_ascii = high < 0x80;
                let line = (self.start, self.start + i);
                self.start += i + 1 + usize::from(crlf);
                self.line_no += 1;
                return Ok(Some(line));
            }
            if i < unread.len() && !(unread[i] == b'\r' && i + 1 == unread.len() && !self.eof) {
                return Err(Unsupported);
            }
            if self.eof {
                if self.start < self.filled {
                    self.line_ascii = high < 0x80;
                    self.unterminated = true;
                    let line = (self.start, self.filled);
                    self.start = self.filled;
                    self.line_no += 1;
                    return Ok(Some(line));
                }
                return Ok(None);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.filled, 0);
                self.filled -= self.start;
                self.start = 0;
            }
            if self.filled == self.buf.len() {
                // A line longer than the buffer.
                return Err(Unsupported);
            }
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(Unsupported),
            }
        }
    }

    fn col(&self, line: &str, byte: usize) -> u32 {
        let chars = if self.line_ascii {
            byte
        } else {
            line.as_bytes()[..byte.min(line.len())].iter().filter(|&&b| b & 0xC0 != 0x80).count()
        };
        u32::try_from(chars + 1).unwrap_or(u32::MAX)
    }

    fn pos(&self, line: &str, byte: usize) -> Pos {
        Pos { line: self.line_no, column: self.col(line, byte) }
    }

    fn push(&mut self, event: ParseEvent, pos: Pos) {
        self.events.push(Queued { event, pos, text: (0, 0) });
    }

    fn push_scalar(&mut self, s: ScalarTok, anchor: usize) {
        self.events.push(Queued {
            event: ParseEvent::Scalar { quoted: s.quoted, anchor },
            pos: s.pos,
            text: s.text,
        });
    }

    fn push_null(&mut self, pos: Pos, anchor: usize) {
        let at = self.texts.len();
        self.events.push(Queued {
            event: ParseEvent::Scalar { quoted: false, anchor },
            pos,
            text: (at, at),
        });
    }

    fn open(&mut self, kind: Kind, indent: usize, indentless: bool) -> Step {
        if self.stack.len() >= MAX_SCAN_DEPTH {
            return Err(Unsupported);
        }
        self.stack.push(Block { kind, indent, indentless });
        Ok(())
    }

    fn close_top(&mut self, pos: Pos) {
        if let Some(b) = self.stack.pop() {
            self.push(
                if b.kind == Kind::Map { ParseEvent::MapEnd } else { ParseEvent::SeqEnd },
                pos,
            );
        }
    }

    /// End of input: the pending value is empty, every open block ends.
    fn finish(&mut self) -> Step {
        if self.block.is_some() {
            if self.unterminated {
                // The last line break of a block scalar is missing: saphyr's call.
                return Err(Unsupported);
            }
            self.end_block_scalar()?;
        }
        if let Some(p) = self.pending.take() {
            self.resolve_null(p);
        }
        if self.doc_start && !self.started {
            // `---` alone is a document holding one empty scalar: saphyr's business.
            return Err(Unsupported);
        }
        let pos = Pos { line: self.line_no + 1, column: 1 };
        while !self.stack.is_empty() {
            self.close_top(pos);
        }
        // saphyr's stream end has the end's position; later `End`s have none.
        self.push(ParseEvent::End, pos);
        Ok(())
    }

    fn resolve_null(&mut self, p: Pending) {
        let pos = if p.anchor != 0 { p.anchor_pos } else { p.null_pos };
        self.push_null(pos, p.anchor);
    }

    /// One line (without its `\n`). Ok(false) for a blank or comment line.
    fn line(&mut self, bytes: &[u8]) -> Step<bool> {
        // Control characters were refused by `next_line`; non-printables are left to saphyr.
        let line = if self.line_ascii {
            // SAFETY: every byte is in 0x20..0x7f (checked by `next_line`), so this is ASCII,
            // which is valid UTF-8. Skipping the second validation pass of every line is
            // measurable at hundreds of MB of manifest.
            unsafe { std::str::from_utf8_unchecked(bytes) }
        } else {
            let line = std::str::from_utf8(bytes).map_err(|_| Unsupported)?;
            if line.chars().any(|c| {
                matches!(
                    c,
                    '\u{80}'
                        ..='\u{9F}'
                            | '\u{2028}'
                            | '\u{2029}'
                            | '\u{FEFF}'
                            | '\u{FFFE}'
                            | '\u{FFFF}'
                )
            }) {
                return Err(Unsupported);
            }
            line
        };
        let b = line.as_bytes();
        let n = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
        if self.block.is_some() && self.block_line(line, n)? {
            return Ok(true);
        }
        if n == b.len() || b[n] == b'#' {
            return Ok(false);
        }
        if n == 0 && (b.starts_with(b"---") || b.starts_with(b"...")) && blank_or_end(b, 3) {
            if b[0] == b'.' || self.started || self.doc_start {
                return Err(Unsupported);
            }
            self.doc_start = true;
            let rest = skip_spaces(b, 3);
            if rest < b.len() && b[rest] != b'#' {
                return Err(Unsupported);
            }
            return Ok(false);
        }
        if n == 0 && b[0] == b'%' {
            return Err(Unsupported);
        }
        let dash = is_entry(b, n);
        if !self.started {
            // The root: a block mapping or sequence.
            self.started = true;
            self.block_node(line, n, None, Place::Root)?;
            return Ok(true);
        }
        if let Some(p) = self.pending.take() {
            let owner = match p.awaiting {
                Awaiting::MapValue(i) | Awaiting::SeqItem(i) => i,
            };
            let anchor = (p.anchor != 0).then_some((p.anchor, p.anchor_pos));
            if n > owner {
                self.block_node(line, n, anchor, Place::NextLine)?;
                return Ok(true);
            }
            if n == owner && dash && matches!(p.awaiting, Awaiting::MapValue(_)) {
                // A sequence at its key's indent; saphyr places it after the `- `.
                let pos = match anchor {
                    Some((_, at)) => at,
                    None => self.entry_pos(line, n),
                };
                self.push(ParseEvent::SeqStart { anchor: p.anchor }, pos);
                self.open(Kind::Seq, n, true)?;
                self.seq_entry(line, n)?;
                return Ok(true);
            }
            self.resolve_null(p);
        }
        let here = self.pos(line, n);
        while let Some(top) = self.stack.last() {
            if top.indent > n || (top.indentless && top.indent == n && !dash) {
                self.close_top(here);
            } else {
                break;
            }
        }
        match self.stack.last() {
            Some(top) if top.indent == n => match (top.kind, dash) {
                (Kind::Map, false) => self.map_entry(line, n)?,
                (Kind::Seq, true) => self.seq_entry(line, n)?,
                _ => return Err(Unsupported),
            },
            _ => return Err(Unsupported),
        }
        Ok(true)
    }

    /// Where saphyr puts a `-` entry's token: after the dash and its blanks, or at the end of
    /// the line if a comment follows.
    fn entry_pos(&self, line: &str, dash: usize) -> Pos {
        let b = line.as_bytes();
        let j = skip_spaces(b, dash + 1);
        if j < b.len() && b[j] == b'#' {
            self.pos(line, b.len())
        } else {
            self.pos(line, j)
        }
    }

    /// The item after the `-` at byte `dash` of a sequence at that indent.
    fn seq_entry(&mut self, line: &str, dash: usize) -> Step {
        let b = line.as_bytes();
        let j = skip_spaces(b, dash + 1);
        if j == b.len() || b[j] == b'#' {
            self.pending = Some(Pending {
                awaiting: Awaiting::SeqItem(dash),
                null_pos: self.pos(line, b.len()),
                anchor: 0,
                anchor_pos: Pos::default(),
            });
            return Ok(());
        }
        self.block_node(line, j, None, Place::AfterDash)
    }

    /// A block node starting at byte `at` of this line: a sequence, a mapping (the first key
    /// is here), or a one-line value. `anchor` came from an earlier line.
    fn block_node(
        &mut self,
        line: &str,
        at: usize,
        anchor: Option<(usize, Pos)>,
        place: Place,
    ) -> Step {
        let root = place == Place::Root;
        let b = line.as_bytes();
        if is_entry(b, at) {
            let pos = anchor.map_or_else(|| self.pos(line, at), |(_, p)| p);
            self.push(ParseEvent::SeqStart { anchor: anchor.map_or(0, |a| a.0) }, pos);
            self.open(Kind::Seq, at, false)?;
            return self.seq_entry(line, at);
        }
        // Properties written on this line.
        let mut i = at;
        let mut here_anchor = None;
        if b[i] == b'&' {
            if anchor.is_some() || root {
                return Err(Unsupported);
            }
            let pos = self.pos(line, i);
            let (id, next) = self.anchor_def(line, i)?;
            here_anchor = Some((id, pos));
            i = skip_spaces(b, next);
            if i == b.len() || b[i] == b'#' {
                // `- &a` with its node on the next lines.
                let (Place::AfterDash, Some(Block { kind: Kind::Seq, indent: dash, .. })) =
                    (place, self.stack.last().copied())
                else {
                    return Err(Unsupported);
                };
                self.pending = Some(Pending {
                    awaiting: Awaiting::SeqItem(dash),
                    null_pos: pos,
                    anchor: id,
                    anchor_pos: pos,
                });
                return Ok(());
            }
            if is_entry(b, i) {
                return Err(Unsupported);
            }
        }
        match b[i] {
            b'|' | b'>' => {
                let (Place::AfterDash, Some(Block { kind: Kind::Seq, indent: dash, .. })) =
                    (place, self.stack.last().copied())
                else {
                    return Err(Unsupported);
                };
                let node_anchor = here_anchor.or(anchor);
                return self.start_block_scalar(line, i, dash + 1, node_anchor);
            }
            b'[' | b'{' | b'*' => {
                if root {
                    return Err(Unsupported);
                }
                let node_anchor = here_anchor.or(anchor);
                let end = self.flow_node(line, i, node_anchor, 0)?;
                return self.end_of_line(b, end);
            }
            _ => {}
        }
        let (tok, end) = self.scalar(line, i, false)?;
        let j = skip_spaces(b, end);
        if j < b.len() && b[j] == b':' && blank_or_end(b, j + 1) {
            // A key: a new block mapping at this column.
            if here_anchor.is_some() || end - i > MAX_KEY_BYTES {
                return Err(Unsupported);
            }
            let pos = anchor.map_or(tok.pos, |(_, p)| p);
            self.push(ParseEvent::MapStart { anchor: anchor.map_or(0, |a| a.0) }, pos);
            self.open(Kind::Map, at, false)?;
            self.push_scalar(tok, 0);
            return self.map_value(line, at, j);
        }
        if root || anchor.is_some() && here_anchor.is_some() {
            return Err(Unsupported);
        }
        let node_anchor = here_anchor.or(anchor);
        let tok = match node_anchor {
            Some((_, p)) => ScalarTok { pos: p, ..tok },
            None => tok,
        };
        self.push_scalar(tok, node_anchor.map_or(0, |a| a.0));
        self.end_of_line(b, end)
    }

    /// A key of the mapping at `indent` starts this line.
    fn map_entry(&mut self, line: &str, indent: usize) -> Step {
        let b = line.as_bytes();
        if matches!(b[indent], b'&' | b'*' | b'[' | b'{') {
            return Err(Unsupported);
        }
        let (tok, end) = self.scalar(line, indent, false)?;
        let j = skip_spaces(b, end);
        if !(j < b.len() && b[j] == b':' && blank_or_end(b, j + 1)) || end - indent > MAX_KEY_BYTES
        {
            return Err(Unsupported);
        }
        self.push_scalar(tok, 0);
        self.map_value(line, indent, j)
    }

    /// The value after the `:` at byte `colon` of a key in the mapping at `indent`.
    fn map_value(&mut self, line: &str, indent: usize, colon: usize) -> Step {
        let b = line.as_bytes();
        let mut i = skip_spaces(b, colon + 1);
        let null_pos = self.pos(line, colon);
        if i == b.len() || b[i] == b'#' {
            self.pending = Some(Pending {
                awaiting: Awaiting::MapValue(indent),
                null_pos,
                anchor: 0,
                anchor_pos: null_pos,
            });
            return Ok(());
        }
        let mut anchor = None;
        if b[i] == b'&' {
            let pos = self.pos(line, i);
            let (id, next) = self.anchor_def(line, i)?;
            anchor = Some((id, pos));
            i = skip_spaces(b, next);
            if i == b.len() || b[i] == b'#' {
                self.pending = Some(Pending {
                    awaiting: Awaiting::MapValue(indent),
                    null_pos,
                    anchor: id,
                    anchor_pos: pos,
                });
                return Ok(());
            }
        }
        match b[i] {
            b'|' | b'>' => self.start_block_scalar(line, i, indent + 1, anchor),
            b'[' | b'{' | b'*' => {
                let end = self.flow_node(line, i, anchor, 0)?;
                self.end_of_line(b, end)
            }
            _ => {
                if is_entry(b, i) {
                    return Err(Unsupported);
                }
                let (tok, end) = self.scalar(line, i, false)?;
                let tok = match anchor {
                    Some((_, p)) => ScalarTok { pos: p, ..tok },
                    None => tok,
                };
                self.push_scalar(tok, anchor.map_or(0, |a| a.0));
                self.end_of_line(b, end)
            }
        }
    }

    /// A block scalar's header (`|`, `>`, with `-` or `+`) at byte `at`; its content is on
    /// the next lines, indented at least `min_indent`.
    fn start_block_scalar(
        &mut self,
        line: &str,
        at: usize,
        min_indent: usize,
        anchor: Option<(usize, Pos)>,
    ) -> Step {
        let b = line.as_bytes();
        let chomp = match b.get(at + 1) {
            Some(b'-') => Chomp::Strip,
            Some(b'+') => Chomp::Keep,
            _ => Chomp::Clip,
        };
        let end = if chomp == Chomp::Clip { at + 1 } else { at + 2 };
        // An explicit indentation digit, or anything but a comment after the header, is left
        // to saphyr.
        if end < b.len() && b[end] != b' ' {
            return Err(Unsupported);
        }
        self.end_of_line(b, end)?;
        self.block_text.clear();
        self.block = Some(BlockScalar {
            folded: b[at] == b'>',
            chomp,
            min_indent,
            indent: None,
            leading_blank_spaces: 0,
            breaks: 0,
            has_content: false,
            // saphyr places an anchored block scalar at its anchor, else at its first
            // content line (set there).
            pos: anchor.map_or(Pos::default(), |(_, p)| p),
            anchor: anchor.map_or(0, |a| a.0),
        });
        Ok(())
    }

    /// A line while a block scalar is open (`n` leading spaces): true if it was the scalar's,
    /// false if it ended the scalar (and is to be read as usual).
    fn block_line(&mut self, line: &str, n: usize) -> Step<bool> {
        let Some(mut bs) = self.block else { return Ok(false) };
        let blank = n == line.len();
        let indent = match bs.indent {
            _ if blank => {
                if bs.indent.is_some_and(|i| n > i) {
                    // Spaces past the indent on a blank line are content: saphyr's call.
                    return Err(Unsupported);
                }
                bs.leading_blank_spaces = bs.leading_blank_spaces.max(n);
                bs.breaks += 1;
                self.block = Some(bs);
                return Ok(true);
            }
            Some(i) if n >= i => i,
            None if n >= bs.min_indent => {
                if bs.leading_blank_spaces > n {
                    return Err(Unsupported);
                }
                n
            }
            _ => {
                self.end_block_scalar()?;
                return Ok(false);
            }
        };
        if bs.folded && n > indent {
            // More-indented lines keep their breaks in folded scalars: saphyr's call.
            return Err(Unsupported);
        }
        if !bs.has_content && bs.anchor == 0 {
            bs.pos = self.pos(line, indent);
        }
        bs.indent = Some(indent);
        let text = line.get(indent..).ok_or(Unsupported)?;
        // What this line adds is at most its breaks and its text: checked before it is
        // added, so the buffer never grows past the value bound (a value near or past it is
        // saphyr's to measure exactly, and to refuse).
        if self.block_text.len() + bs.breaks + text.len() > MAX_SCALAR_BYTES {
            return Err(Unsupported);
        }
        if bs.folded && bs.has_content {
            if bs.breaks == 1 {
                self.block_text.push(' ');
            } else {
                push_breaks(&mut self.block_text, bs.breaks - 1);
            }
        } else {
            push_breaks(&mut self.block_text, bs.breaks);
        }
        self.block_text.push_str(text);
        bs.has_content = true;
        bs.breaks = 1;
        self.block = Some(bs);
        Ok(true)
    }

    /// The open block scalar ends: queue it, chomped.
    fn end_block_scalar(&mut self) -> Step {
        let Some(bs) = self.block.take() else { return Ok(()) };
        if !bs.has_content {
            // An empty block scalar: saphyr places it where the next token is.
            return Err(Unsupported);
        }
        let chomped = match bs.chomp {
            Chomp::Strip => 0,
            Chomp::Clip => 1,
            Chomp::Keep => bs.breaks,
        };
        if self.block_text.len() + chomped > MAX_SCALAR_BYTES {
            return Err(Unsupported);
        }
        let start = self.texts.len();
        self.texts.push_str(&self.block_text);
        match bs.chomp {
            Chomp::Strip => {}
            Chomp::Clip => self.texts.push('\n'),
            Chomp::Keep => push_breaks(&mut self.texts, bs.breaks),
        }
        let tok = ScalarTok { quoted: true, text: (start, self.texts.len()), pos: bs.pos };
        self.push_scalar(tok, bs.anchor);
        Ok(())
    }

    /// After a value only blanks and a comment may follow.
    fn end_of_line(&self, b: &[u8], end: usize) -> Step {
        let j = skip_spaces(b, end);
        if j == b.len() || (b[j] == b'#' && j > end) {
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    /// `&name` at byte `at`: its id (numbered as saphyr numbers them) and the byte after it.
    fn anchor_def(&mut self, line: &str, at: usize) -> Step<(usize, usize)> {
        let (name, end) = anchor_name(line, at + 1)?;
        let b = line.as_bytes();
        if end < b.len() && b[end] != b' ' {
            return Err(Unsupported);
        }
        let id = self.next_anchor;
        match self.anchors.get_mut(name) {
            Some(slot) => *slot = id,
            None => {
                if self.anchors.len() >= MAX_SCAN_ANCHORS {
                    return Err(Unsupported);
                }
                self.anchors.insert(name.to_string(), id);
            }
        }
        self.next_anchor += 1;
        Ok((id, end))
    }

    /// A flow node (or an alias) at byte `at`: its events are queued; returns the byte after.
    fn flow_node(
        &mut self,
        line: &str,
        at: usize,
        anchor: Option<(usize, Pos)>,
        depth: usize,
    ) -> Step<usize> {
        if depth >= MAX_SCAN_DEPTH {
            return Err(Unsupported);
        }
        let b = line.as_bytes();
        let mut i = at;
        let mut anchor = anchor;
        if i < b.len() && b[i] == b'&' {
            if anchor.is_some() {
                return Err(Unsupported);
            }
            let pos = self.pos(line, i);
            let (id, next) = self.anchor_def(line, i)?;
            anchor = Some((id, pos));
            i = skip_spaces(b, next);
        }
        if i >= b.len() {
            return Err(Unsupported);
        }
        let id = anchor.map_or(0, |a| a.0);
        match b[i] {
            b'*' => {
                if anchor.is_some() {
                    return Err(Unsupported);
                }
                let (name, end) = anchor_name(line, i + 1)?;
                let Some(&target) = self.anchors.get(name) else { return Err(Unsupported) };
                let pos = self.pos(line, i);
                self.push(ParseEvent::Alias(target), pos);
                Ok(end)
            }
            b'[' => {
                let pos = anchor.map_or_else(|| self.pos(line, i), |a| a.1);
                self.push(ParseEvent::SeqStart { anchor: id }, pos);
                let mut j = skip_spaces(b, i + 1);
                loop {
                    if j < b.len() && b[j] == b']' {
                        let pos = self.pos(line, j);
                        self.push(ParseEvent::SeqEnd, pos);
                        return Ok(j + 1);
                    }
                    j = self.flow_node(line, j, None, depth + 1)?;
                    j = skip_spaces(b, j);
                    match b.get(j) {
                        Some(b',') => j = skip_spaces(b, j + 1),
                        Some(b']') => {}
                        _ => return Err(Unsupported),
                    }
                }
            }
            b'{' => {
                let pos = anchor.map_or_else(|| self.pos(line, i), |a| a.1);
                self.push(ParseEvent::MapStart { anchor: id }, pos);
                let mut j = skip_spaces(b, i + 1);
                loop {
                    if j < b.len() && b[j] == b'}' {
                        let pos = self.pos(line, j);
                        self.push(ParseEvent::MapEnd, pos);
                        return Ok(j + 1);
                    }
                    if j >= b.len() || matches!(b[j], b'&' | b'*' | b'[' | b'{') {
                        return Err(Unsupported);
                    }
                    let (key, end) = self.scalar(line, j, true)?;
                    if end - j > MAX_KEY_BYTES {
                        return Err(Unsupported);
                    }
                    let c = skip_spaces(b, end);
                    // After a quoted key the value may touch the `:` (JSON style, as `cpra
                    // gen` writes configs); after a plain one a blank must follow it.
                    let adjacent_ok = key.quoted && c == end;
                    if !(c + 1 < b.len() && b[c] == b':' && (b[c + 1] == b' ' || adjacent_ok)) {
                        return Err(Unsupported);
                    }
                    self.push_scalar(key, 0);
                    let v = skip_spaces(b, c + 1);
                    if v >= b.len() || matches!(b[v], b',' | b'}' | b'#') {
                        return Err(Unsupported);
                    }
                    j = self.flow_node(line, v, None, depth + 1)?;
                    j = skip_spaces(b, j);
                    match b.get(j) {
                        Some(b',') => {
                            j = skip_spaces(b, j + 1);
                            if b.get(j) == Some(&b'}') {
                                // saphyr places the end of `{a: b,}` at the comma.
                                return Err(Unsupported);
                            }
                        }
                        Some(b'}') => {}
                        _ => return Err(Unsupported),
                    }
                }
            }
            _ => {
                let (tok, end) = self.scalar(line, i, true)?;
                let tok = match anchor {
                    Some((_, p)) => ScalarTok { pos: p, ..tok },
                    None => tok,
                };
                self.push_scalar(tok, id);
                let c = skip_spaces(b, end);
                if c < b.len() && b[c] == b':' {
                    // `[a: b]` (a one-pair mapping) or a key without a space: saphyr's.
                    return Err(Unsupported);
                }
                Ok(end)
            }
        }
    }

    /// A plain or quoted scalar on one line at byte `at`; its text goes to `texts`.
    fn scalar(&mut self, line: &str, at: usize, in_flow: bool) -> Step<(ScalarTok, usize)> {
        let b = line.as_bytes();
        let pos = self.pos(line, at);
        let start = self.texts.len();
        let end = match b.get(at) {
            Some(b'\'') => {
                let mut i = at + 1;
                loop {
                    let rest = b.get(i..).ok_or(Unsupported)?;
                    let q = rest.iter().position(|&c| c == b'\'').ok_or(Unsupported)?;
                    self.texts.push_str(line.get(i..i + q).ok_or(Unsupported)?);
                    i += q + 1;
                    if b.get(i) == Some(&b'\'') {
                        self.texts.push('\'');
                        i += 1;
                    } else {
                        break i;
                    }
                }
            }
            Some(b'"') => self.double_quoted(line, at + 1)?,
            Some(&c) => {
                if matches!(
                    c,
                    b'#' | b'&'
                        | b'*'
                        | b'!'
                        | b'|'
                        | b'>'
                        | b'%'
                        | b'@'
                        | b'`'
                        | b'?'
                        | b':'
                        | b','
                        | b'['
                        | b']'
                        | b'{'
                        | b'}'
                ) || (c == b'-' && (blank_or_end(b, at + 1) || (in_flow && is_flow(b[at + 1]))))
                {
                    return Err(Unsupported);
                }
                let end = plain_end(b, at, in_flow);
                self.texts.push_str(line.get(at..end).ok_or(Unsupported)?);
                end
            }
            None => return Err(Unsupported),
        };
        let quoted = b[at] == b'\'' || b[at] == b'"';
        if quoted && end < b.len() && !matches!(b[end], b' ' | b':' | b',' | b']' | b'}') {
            return Err(Unsupported);
        }
        Ok((ScalarTok { quoted, text: (start, self.texts.len()), pos }, end))
    }

    /// The body of a double-quoted scalar from byte `from`; returns the byte after the quote.
    fn double_quoted(&mut self, line: &str, from: usize) -> Step<usize> {
        let b = line.as_bytes();
        let mut i = from;
        loop {
            let rest = b.get(i..).ok_or(Unsupported)?;
            let q = rest.iter().position(|&c| c == b'"' || c == b'\\').ok_or(Unsupported)?;
            self.texts.push_str(line.get(i..i + q).ok_or(Unsupported)?);
            i += q;
            if b[i] == b'"' {
                return Ok(i + 1);
            }
            let e = *b.get(i + 1).ok_or(Unsupported)?;
            let c = match e {
                b'0' => '\0',
                b'a' => '\x07',
                b'b' => '\x08',
                b't' => '\t',
                b'n' => '\n',
                b'v' => '\x0b',
                b'f' => '\x0c',
                b'r' => '\r',
                b'e' => '\x1b',
                b' ' => ' ',
                b'"' => '"',
                b'/' => '/',
                b'\\' => '\\',
                b'N' => '\u{85}',
                b'_' => '\u{A0}',
                b'L' => '\u{2028}',
                b'P' => '\u{2029}',
                b'x' | b'u' | b'U' => {
                    let len = match e {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    let hex = line.get(i + 2..i + 2 + len).ok_or(Unsupported)?;
                    if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                        return Err(Unsupported);
                    }
                    let code = u32::from_str_radix(hex, 16).map_err(|_| Unsupported)?;
                    let c = char::from_u32(code).ok_or(Unsupported)?;
                    self.texts.push(c);
                    i += 2 + len;
                    continue;
                }
                _ => return Err(Unsupported),
            };
            self.texts.push(c);
            i += 2;
        }
    }
}

/// The end of a plain scalar starting at byte `at` (trailing blanks excluded): it ends at
/// `: `, a `:` at the end of the line, ` #`, and in flow context at `,[]{}` and `:` before them.
fn plain_end(b: &[u8], at: usize, in_flow: bool) -> usize {
    let stops = if in_flow { &FLOW_STOPS } else { &BLOCK_STOPS };
    let mut end = at;
    let mut j = at;
    while j < b.len() {
        // Most bytes are ordinary: skip them in a tight loop.
        let run = j;
        while j < b.len() && !stops[usize::from(b[j])] {
            j += 1;
        }
        if j > run {
            end = j;
        }
        if j == b.len() {
            break;
        }
        let c = b[j];
        if c == b' ' {
            j += 1;
            if j < b.len() && b[j] == b'#' {
                break;
            }
            continue;
        }
        if c == b':' && (j + 1 == b.len() || b[j + 1] == b' ' || (in_flow && is_flow(b[j + 1]))) {
            break;
        }
        if in_flow && is_flow(c) {
            break;
        }
        j += 1;
        end = j;
    }
    end
}

/// Bytes at which `plain_end` must look closer, in block and in flow context.
const BLOCK_STOPS: [bool; 256] = stops(false);
const FLOW_STOPS: [bool; 256] = stops(true);

const fn stops(in_flow: bool) -> [bool; 256] {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b':' as usize] = true;
    if in_flow {
        t[b',' as usize] = true;
        t[b'[' as usize] = true;
        t[b']' as usize] = true;
        t[b'{' as usize] = true;
        t[b'}' as usize] = true;
    }
    t
}

/// An anchor or alias name from byte `at`: saphyr takes non-blank, non-flow characters; this
/// scanner takes the usual ASCII ones and leaves others to saphyr.
fn anchor_name(line: &str, at: usize) -> Step<(&str, usize)> {
    let b = line.as_bytes();
    let mut end = at;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b'-') {
        end += 1;
    }
    if end == at || (end < b.len() && !matches!(b[end], b' ' | b',' | b']' | b'}')) {
        return Err(Unsupported);
    }
    Ok((line.get(at..end).ok_or(Unsupported)?, end))
}

/// How many leading bytes of `b`, in whole 8-byte words, are printable ASCII (0x20..0x7f):
/// the line scan's fast path, a word at a time (a line is ~40 bytes, nearly all printable).
fn printable_ascii_prefix(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        // A byte below 0x20, a byte 0x7f (zero after xor), or a byte with its high bit set.
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let del = (x ^ (ONES * 0x7f)).wrapping_sub(ONES) & !(x ^ (ONES * 0x7f)) & HIGHS;
        if below_space | del | (x & HIGHS) != 0 {
            break;
        }
        i += 8;
    }
    i
}

fn push_breaks(text: &mut String, n: usize) {
    for _ in 0..n {
        text.push('\n');
    }
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

fn blank_or_end(b: &[u8], i: usize) -> bool {
    i >= b.len() || b[i] == b' '
}

/// A block sequence entry: `-` followed by a blank or the end of the line.
fn is_entry(b: &[u8], i: usize) -> bool {
    i < b.len() && b[i] == b'-' && blank_or_end(b, i + 1)
}

/// Re-opens the input from its start, for the saphyr fallback.
pub type Reopen = Box<dyn FnMut() -> std::io::Result<Box<dyn Read>>>;

/// The YAML event source the loader uses: the fast scanner, falling back to saphyr from the
/// start of the input (skipping the events already handed out) when it meets YAML it does
/// not handle.
pub struct FastYaml {
    fast: Option<YamlScanner<Box<dyn Read>>>,
    slow: Option<YamlReader<Box<dyn Read>>>,
    reopen: Reopen,
    /// Events handed out by the fast scanner.
    handed: u64,
    /// A digest of the handed-out events (kind, anchor, text), to check that saphyr's first
    /// `handed` events are the same.
    #[cfg(debug_assertions)]
    digest: u64,
}

#[cfg(debug_assertions)]
fn digest_step(digest: u64, event: ParseEvent, text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    digest.hash(&mut h);
    format!("{event:?}").hash(&mut h);
    text.hash(&mut h);
    h.finish()
}

impl FastYaml {
    pub fn new(reader: Box<dyn Read>, reopen: Reopen) -> Self {
        FastYaml {
            fast: Some(YamlScanner::new(reader)),
            slow: None,
            reopen,
            handed: 0,
            #[cfg(debug_assertions)]
            digest: 0,
        }
    }

    /// Whether the saphyr fallback has taken over.
    pub fn fell_back(&self) -> bool {
        self.slow.is_some()
    }

    fn fall_back(&mut self) -> Result<(), SyntaxError> {
        self.fast = None;
        let reader = (self.reopen)().map_err(|e| SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: format!("{READ_FAILED} again: {e}"),
        })?;
        let mut slow = YamlReader::new(reader);
        #[cfg(debug_assertions)]
        let mut digest = 0;
        for _ in 0..self.handed {
            let (_event, _) = slow.next_event()?;
            #[cfg(debug_assertions)]
            {
                let text =
                    if matches!(_event, ParseEvent::Scalar { .. }) { slow.scalar() } else { "" };
                digest = digest_step(digest, _event, text);
            }
        }
        #[cfg(debug_assertions)]
        debug_assert_eq!(digest, self.digest, "the fast scanner's events differ from saphyr's");
        self.slow = Some(slow);
        Ok(())
    }
}

impl EventSource for FastYaml {
    fn next_event(&mut self) -> Result<(ParseEvent, Pos), SyntaxError> {
        if let Some(fast) = &mut self.fast {
            loop {
                if let Some(q) = fast.pop_ready() {
                    let (event, pos) = (q.event, q.pos);
                    self.handed += 1;
                    #[cfg(debug_assertions)]
                    {
                        let text = if matches!(event, ParseEvent::Scalar { .. }) {
                            fast.text()
                        } else {
                            ""
                        };
                        self.digest = digest_step(self.digest, event, text);
                    }
                    return Ok((event, pos));
                }
                match fast.refill() {
                    Ok(true) => {}
                    Ok(false) => return Ok((ParseEvent::End, Pos::default())),
                    Err(Unsupported) => break,
                }
            }
            self.fall_back()?;
        }
        match &mut self.slow {
            Some(slow) => slow.next_event(),
            None => Ok((ParseEvent::End, Pos::default())),
        }
    }

    fn scalar(&self) -> &str {
        match (&self.fast, &self.slow) {
            (Some(fast), _) => fast.text(),
            (None, Some(slow)) => slow.scalar(),
            (None, None) => "",
        }
    }
}

/// The YAML event source for the loader: the fast scanner with a saphyr fallback when the
/// input can be re-opened, saphyr alone when it cannot (a plain stream such as stdin).
pub fn yaml_source(reader: Box<dyn Read>, reopen: Option<Reopen>) -> Box<dyn EventSource> {
    match reopen {
        Some(reopen) => Box::new(FastYaml::new(reader, reopen)),
        None => Box::new(YamlReader::new(reader)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_SCALAR_BYTES;
    use crate::manifest::event::Owned;

    type Events = Vec<(Owned, Pos)>;

    fn reopen_of(text: &str) -> Reopen {
        let bytes: std::sync::Arc<[u8]> = text.as_bytes().into();
        Box::new(move || {
            Ok(Box::new(std::io::Cursor::new(std::sync::Arc::clone(&bytes))) as Box<dyn Read>)
        })
    }

    /// Every event up to and including `End` (or the error), from any source.
    fn all(src: &mut dyn EventSource) -> Result<Events, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let (event, pos) = src.next_event()?;
            let text = if matches!(event, ParseEvent::Scalar { .. }) { src.scalar() } else { "" };
            out.push((Owned::of(event, text), pos));
            if event == ParseEvent::End {
                return Ok(out);
            }
        }
    }

    fn saphyr(text: &str) -> Result<Events, SyntaxError> {
        all(&mut YamlReader::new(std::io::Cursor::new(text.as_bytes().to_vec())))
    }

    /// The wrapper's events, and whether it fell back.
    fn wrapped(text: &str) -> (Result<Events, SyntaxError>, bool) {
        let mut w = FastYaml::new(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            reopen_of(text),
        );
        let r = all(&mut w);
        (r, w.fell_back())
    }

    /// The scanner alone.
    fn scanned(text: &str) -> Result<Events, Unsupported> {
        let mut s = YamlScanner::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let mut out = Vec::new();
        loop {
            let (event, pos) = s.next_event()?;
            let t = if matches!(event, ParseEvent::Scalar { .. }) { s.text() } else { "" };
            out.push((Owned::of(event, t), pos));
            if event == ParseEvent::End {
                return Ok(out);
            }
        }
    }

    fn show(events: &Result<Events, SyntaxError>) -> String {
        match events {
            Ok(evs) => evs
                .iter()
                .map(|(o, p)| format!("{:?} {:?} {}:{}\n", o.event, o.text, p.line, p.column))
                .collect(),
            Err(e) => format!("ERR {e:?}\n"),
        }
    }

    /// The wrapper gives saphyr's events, texts and positions; returns whether the fast
    /// scanner handled the whole input.
    fn same(text: &str) -> bool {
        let want = saphyr(text);
        let (got, fell_back) = wrapped(text);
        assert_eq!(show(&got), show(&want), "input: {text:?}");
        !fell_back
    }

    fn falls_back(text: &str) {
        assert!(scanned(text).is_err(), "the scanner took {text:?}");
        assert!(!same(text), "no fallback on {text:?}");
    }

    /// Manifest-shaped YAML the fast scanner handles whole.
    const FAST_CASES: &[&str] = &[
        "a:\nb: 1\nc:\n",
        "- \n- x\n",
        "k:\n-\n- b\n",
        "k:\n - a\nz:   \n  # c\ny: 'it''s'  # c\nx: \"a\\tb\"\n",
        "a: 1\nb:",
        "a: 1\nb: 2",
        "- a\n-\n",
        "- - a\n  - b\n- k: v\n  j: w\n-\n",
        "m:\n  n:\n    o: 1\np: &x\n  q: 2\nr: *x\ns: &y\nt: [1, {a: b}]\n",
        "k: &a\n- x\nm: &b\n  - y\nn: &c\n  - z\no: &d [1]\n",
        "- k:\n  - a\n  - b\n  j: 1\n- k:\n- x\n",
        "a:\n  - b: 1\n    c:\n      - d\n      -   e   \n  -  # c\n    f: 2\n",
        "a: [a, b,]\n",
        "---\na: 1\n",
        "# head\n--- # c\n\n# x\na:   1   # t\n\n\n# tail",
        "a: 1\n\n",
        "",
        "# only a comment\n",
        "- - - x\n    - y\n  - z\n- w\n",
        "a:\n  b:\n  c:\nd:\n",
        "a: -1\nb: -x\nc: a-b\nd: x:y\ne: a # b\nf: a#b\ng: http://x:80/p\n",
        "a:    \n    b: 1\n",
        "- &a x\n- *a\n- &b\n  k: v\n- *b\n- &c [1]\n- &a {z: 1}\n- *a\n",
        "base: &base {type: http, interval: 10s}\nm:\n  <<: *base\n  name: x\n",
        "key : v\n\"q k\": 1\n'p k': 2\n",
        "é: ü\nx: \"😀 \\u00e9 \\x41 \\U0001F600 \\N \\_ \\L \\P \\0 \\/ \\\\\"\n",
        "a: {x: \"y\", z: 'w', n: [1, [2, []], {}], m: {p: {q: r}}}\n",
        "a: [ x , y ]\nb: { c : d }\n",
        "a: ''\nb: \"\"\nc: ' '\nd: \"a\\\"b\"\n",
        "a: ~\nb: null\nc: true\nd: 1.5\n",
        "list:\n- a\n- b\nnext: 1\n",
        "- a: 1\n  b:\n    - c\n- d: 2\n",
        "c: {\"url\":\"http://h:1/p\",\"port\":80,\"s\":[200],\"m\":{\"k\":\"v\"}}\n",
        "c: {\"a\" : b, 'c':d}\n",
        "k:\n  value\nj: &a\n  v2\nl:\n  'q'\nm:\n  [1]\n",
        "- \n  x\n- &a\n  y\n-\n  - z\n",
        "a: {b: c}   # c\nd: [e]  # f\n",
        "a: |\n  line 1\n   line 2\n\n  # not a comment\nb: >\n  folded\n  text\n\n\n  para\n",
        "- |-\n  x\n\n- >+\n  y\n\n\n- &a |\n    z\n  # comment\n- *a\n",
        "a: | # c\n\n\n    x\nc: >-\n  x\n\n  y\n",
        "k:\n  - a: |\n      t\n    b: 1\n  - |\n   u\n",
        "é: {ü: \"ö\", x: [ä, 'ß']}\n",
    ];

    #[test]
    fn fast_cases_match_saphyr() {
        let mut failed = Vec::new();
        let crlf: Vec<String> = FAST_CASES.iter().map(|t| t.replace('\n', "\r\n")).collect();
        for text in FAST_CASES.iter().copied().chain(crlf.iter().map(String::as_str)) {
            let want = saphyr(text);
            let (got, fell_back) = wrapped(text);
            if show(&got) != show(&want) || fell_back {
                failed.push(format!(
                    "input {text:?} (fell back: {fell_back})\nwant:\n{}got:\n{}scanner:\n{}",
                    show(&want),
                    show(&got),
                    show(&scanned(text).map_err(|_| SyntaxError {
                        pos: Pos::default(),
                        message: "unsupported".into()
                    }))
                ));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn unsupported_yaml_falls_back_to_saphyr() {
        falls_back("a: !tag x\n");
        falls_back("a: |2\n   text\n");
        falls_back("a: >\n  text\n    more indented\n");
        falls_back("a: |\n  text");
        falls_back("a: |+\n\n");
        falls_back("a: |\nb: 1\n");
        falls_back("c: >-\n  x\n   \n  y\n");
        falls_back("a: |x\n  text\n");
        falls_back("a: plain\n  continued\n");
        falls_back("a: \"quoted\n  continued\"\n");
        falls_back("? complex\n: value\n");
        falls_back("%YAML 1.2\n---\na: 1\n");
        falls_back("a: 1\n---\nb: 2\n");
        falls_back("a:\tb\n");
        falls_back("a: 1\rb: 2\n");
        falls_back("a: 1\r");
        falls_back("scalar\n");
        falls_back("a: {x: 1,\n  y: 2}\n");
        falls_back("a: *unknown\n");
        falls_back("a: b: c\n");
        falls_back("a: 1\n b: 2\n");
        falls_back("- a\nb: 1\n");
        falls_back("a: [1, 2\n");
        falls_back("a: \"\\q\"\n");
        falls_back("a: 1\n...\n");
        falls_back("---\n");
        falls_back("a: 'x'y\n");
        falls_back("a: x # c\n  y\n");
        falls_back("[1, 2]\n");
        falls_back("a: @x\n");
        falls_back("a: [#x, b]\n");
        falls_back("d: [e]#f\n");
        falls_back("d: {e: f,}\n");
        falls_back("é: {ü: \"ö\", x: [ä, 'ß']}\n- x\n");
        falls_back("a: 1\0\n");
        falls_back("\u{FEFF}a: 1\n");
    }

    /// Texts of events handed out are dropped: the buffers stay line-sized on a long input
    /// where every line opens a collection.
    #[test]
    fn buffers_stay_bounded() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("- [item-{i}, {{k: value-{i}}}]\n  # c\n- name-{i}\n"));
        }
        let mut s = YamlScanner::new(std::io::Cursor::new(text.into_bytes()));
        let mut events = 0;
        loop {
            let (event, _) = s.next_event().unwrap();
            assert!(
                s.texts.len() < 1024 && s.events.len() < 2 * COMPACT_AFTER_EVENTS,
                "{} {}",
                s.texts.len(),
                s.events.len()
            );
            events += 1;
            if event == ParseEvent::End {
                break;
            }
        }
        assert_eq!(events, 1 + 20_000 * 8 + 1 + 1);
    }

    /// A block scalar past the value bound is given up (to saphyr, which refuses it) before
    /// the scanner holds more than the bound: line breaks alone included.
    #[test]
    fn a_block_scalar_stops_at_the_value_bound() {
        let line = format!("  {}\n", "b".repeat(1000));
        let blank_lines = "\n".repeat(MAX_SCALAR_BYTES + 1);
        let texts = [
            format!("a: |\n{}", line.repeat(MAX_SCALAR_BYTES / 1000 + 1)),
            format!("a: |+\n  b\n{blank_lines}"),
            format!("a: |\n  b\n{blank_lines}  c\n"),
        ];
        for text in texts {
            let mut s = YamlScanner::new(std::io::Cursor::new(text.into_bytes()));
            let got = loop {
                match s.next_event() {
                    Ok((ParseEvent::End, _)) => break Ok(()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
                assert!(s.block_text.len() <= MAX_SCALAR_BYTES);
            };
            assert_eq!(got, Err(Unsupported));
            assert!(s.block_text.len() <= MAX_SCALAR_BYTES && s.texts.len() < 1024);
        }
    }

    #[test]
    fn printable_ascii_words() {
        assert_eq!(printable_ascii_prefix(b"abcdefgh~ abcdefg\n"), 16);
        assert_eq!(printable_ascii_prefix(b"abcdefg"), 0);
        for bad in [0x00u8, 0x09, 0x0a, 0x0d, 0x1f, 0x7f, 0x80, 0xc3, 0xff] {
            for at in 0..8 {
                let mut w = *b"abcdefghijklmnop";
                w[8 + at] = bad;
                assert_eq!(printable_ascii_prefix(&w), 8, "{bad:#x} at {at}");
            }
        }
        assert_eq!(printable_ascii_prefix(b" !~}{|01 !~}{|01"), 16);
    }

    #[test]
    fn invalid_utf8_gets_saphyrs_error() {
        let mut bytes = b"a: 1\nb: x".to_vec();
        bytes.push(0xFF);
        bytes.extend_from_slice(b"y\nc: 2\n");
        let want = all(&mut YamlReader::new(std::io::Cursor::new(bytes.clone())));
        let again: std::sync::Arc<[u8]> = bytes.clone().into();
        let mut w = FastYaml::new(
            Box::new(std::io::Cursor::new(bytes)),
            Box::new(move || {
                Ok(Box::new(std::io::Cursor::new(std::sync::Arc::clone(&again))) as Box<dyn Read>)
            }),
        );
        let got = all(&mut w);
        assert!(w.fell_back());
        assert_eq!(show(&got), show(&want));
        assert!(got.is_err());
    }
}

#[cfg(test)]
mod differential {
    //! The wrapper against saphyr on real manifests, the YAML in the engine's tests, and
    //! generated / mutated documents: the same events, texts and positions, or the same error.

    use super::*;
    use crate::manifest::event::Owned;
    use crate::manifest::gen::{parse_mix, write_manifest, GenOptions};
    use crate::manifest::Format;
    use proptest::prelude::*;

    fn all(src: &mut dyn EventSource) -> Result<Vec<(Owned, Pos)>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let (event, pos) = src.next_event()?;
            let text = if matches!(event, ParseEvent::Scalar { .. }) { src.scalar() } else { "" };
            out.push((Owned::of(event, text), pos));
            if event == ParseEvent::End {
                return Ok(out);
            }
        }
    }

    /// Checks the wrapper against saphyr on `bytes`; returns whether it stayed on the fast path.
    fn check(bytes: &[u8]) -> Result<bool, String> {
        let want = all(&mut YamlReader::new(std::io::Cursor::new(bytes.to_vec())));
        let again: std::sync::Arc<[u8]> = bytes.into();
        let mut w = FastYaml::new(
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            Box::new(move || {
                Ok(Box::new(std::io::Cursor::new(std::sync::Arc::clone(&again))) as Box<dyn Read>)
            }),
        );
        let got = all(&mut w);
        if got != want {
            return Err(format!(
                "input {:?}\nsaphyr: {want:?}\nwrapper: {got:?}",
                String::from_utf8_lossy(bytes)
            ));
        }
        Ok(!w.fell_back())
    }

    /// The raw strings (`r#"..."#`) of a Rust source: the YAML the tests feed the loader.
    fn raw_strings(src: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find("r#\"") {
            let body = &rest[i + 3..];
            let Some(j) = body.find("\"#") else { break };
            out.push(&body[..j]);
            rest = &body[j + 2..];
        }
        out
    }

    #[test]
    fn manifests_and_test_yaml_match_saphyr() {
        let mut inputs: Vec<String> =
            vec![include_str!("../../../docs/examples/fleet.yaml").to_string()];
        for src in [
            include_str!("tests.rs"),
            include_str!("decode.rs"),
            include_str!("load.rs"),
            include_str!("../../tests/cli.rs"),
            include_str!("../../tests/cli_run.rs"),
            include_str!("../../tests/e2e.rs"),
        ] {
            inputs.extend(raw_strings(src).into_iter().map(str::to_string));
        }
        for seed in 0..4 {
            let opts = GenOptions {
                monitors: 50,
                format: Format::Yaml,
                targets: vec!["127.0.0.1:8080".into(), "[::1]:9".into()],
                mix: parse_mix("http=50,tcp=10,icmp=10,dns=10,udp=10,tls=10").unwrap(),
                seed,
                ..Default::default()
            };
            let mut buf = Vec::new();
            write_manifest(&opts, &mut buf).unwrap();
            inputs.push(String::from_utf8(buf).unwrap());
        }
        let mut fast = 0;
        for text in &inputs {
            if check(text.as_bytes()).unwrap() {
                fast += 1;
            }
        }
        // The example fleet and generated fleets must stay on the fast path.
        assert!(check(inputs[0].as_bytes()).unwrap(), "fleet.yaml fell back");
        assert!(check(inputs.last().unwrap().as_bytes()).unwrap(), "`cpra gen` output fell back");
        assert!(fast * 2 > inputs.len(), "only {fast} of {} inputs on the fast path", inputs.len());
    }

    use crate::manifest::gen::Rng;

    /// Picks from a list with `cpra gen`'s generator, for documents from a seed.
    trait Pick {
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str;
        fn below(&mut self, n: u64) -> u64;
    }

    impl Pick for Rng {
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const KEYS: &[&str] = &[
        "a",
        "name",
        "type",
        "\"q k\"",
        "'s k'",
        "<<",
        "key with spaces",
        "é",
        "-k",
        "k-1",
        "x.y",
    ];
    const VALUES: &[&str] = &[
        "x",
        "1",
        "-1",
        "a b",
        "a:b",
        "http://h:1/p",
        "'s''q'",
        "\"d\\\"q\\n\"",
        "\"\\u00e9\\t\"",
        "é😀",
        "~",
        "''",
        "a#b",
        "[1, 2]",
        "{a: b, c: [d, 'e']}",
        "*a1",
        "&a1 v",
        "&a2 [x]",
        "x # c",
        "[]",
        "{}",
        "[a, [b, {c: d}],]",
        "\"\"",
        "true",
        "1.5e3",
        "&a3",
        "*a3",
    ];

    fn comment_lines(r: &mut Rng, out: &mut String, indent: usize) {
        match r.below(6) {
            0 => out.push('\n'),
            1 => {
                out.push_str(&" ".repeat(indent));
                out.push_str("# note\n");
            }
            _ => {}
        }
    }

    fn block(r: &mut Rng, out: &mut String, indent: usize, depth: u32, seq: bool) {
        let n = 1 + r.below(3);
        for _ in 0..n {
            comment_lines(r, out, indent);
            out.push_str(&" ".repeat(indent));
            if seq {
                out.push_str("- ");
                item(r, out, indent, depth, true);
            } else {
                out.push_str(r.pick(KEYS));
                out.push(':');
                item(r, out, indent, depth, false);
            }
        }
    }

    /// After `- ` (seq) or `key:` (map) at `indent`.
    fn item(r: &mut Rng, out: &mut String, indent: usize, depth: u32, seq: bool) {
        let nest = depth < 4;
        match r.below(if nest { 9 } else { 3 }) {
            0 => {
                if !seq {
                    out.push(' ');
                }
                out.push_str(r.pick(VALUES));
                if r.below(4) == 0 {
                    out.push_str("  # c");
                }
                out.push('\n');
            }
            1 => out.push('\n'),
            2 => {
                if !seq {
                    out.push(' ');
                }
                out.push_str(r.pick(VALUES));
                out.push('\n');
            }
            5 | 6 if r.below(3) == 0 => {
                if !seq {
                    out.push(' ');
                }
                out.push_str(r.pick(&["|", ">", "|-", ">-", "|+", ">+", "| # c"]));
                out.push('\n');
                let pad = " ".repeat(indent + 2 + r.below(2) as usize);
                for _ in 0..1 + r.below(4) {
                    match r.below(5) {
                        0 => out.push('\n'),
                        1 => {
                            out.push_str(&pad);
                            out.push_str("# text\n");
                        }
                        _ => {
                            out.push_str(&pad);
                            out.push_str(r.pick(VALUES));
                            out.push('\n');
                        }
                    }
                }
            }
            3 if seq => {
                // Compact nesting on the dash's line.
                if r.below(2) == 0 {
                    out.push_str(r.pick(KEYS));
                    out.push(':');
                    item(r, out, indent + 2, depth + 1, false);
                    block(r, out, indent + 2, depth + 1, false);
                } else {
                    out.push_str("- ");
                    item(r, out, indent + 2, depth + 1, true);
                    block(r, out, indent + 2, depth + 1, true);
                }
            }
            4 if !seq => {
                // A sequence at the key's indent.
                if r.below(3) == 0 {
                    out.push_str(" &s");
                }
                out.push('\n');
                block(r, out, indent, depth + 1, true);
            }
            _ => {
                if r.below(5) == 0 {
                    out.push_str(if seq { "&n" } else { " &n" });
                }
                out.push('\n');
                let step = if r.below(3) == 0 { 4 } else { 2 };
                let as_seq = r.below(2) == 0;
                block(r, out, indent + step, depth + 1, as_seq);
            }
        }
    }

    fn document(seed: u64) -> String {
        let mut r = Rng(seed);
        let mut out = String::new();
        if r.below(4) == 0 {
            out.push_str("---\n");
        }
        let seq = r.below(3) == 0;
        block(&mut r, &mut out, 0, 0, seq);
        out
    }

    /// The generator must mostly write YAML the fast path takes, or the proptests below would
    /// compare saphyr with itself (aliases to anchors not yet written are what falls back).
    #[test]
    fn generated_documents_mostly_stay_fast() {
        let fast = (0..100u64).filter(|&seed| check(document(seed).as_bytes()).unwrap()).count();
        assert!(fast >= 50, "only {fast} of 100 generated documents on the fast path");
    }

    /// Bytes that matter to YAML, for mutations.
    const MUTATION_BYTES: &[u8] = b" \n\t\r-:#&*!|>'\"[]{},?%@`\\ax0\xc3\xff";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn generated_documents_match_saphyr(seed in any::<u64>()) {
            let text = document(seed);
            let r = check(text.as_bytes());
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let r = check(text.replace('\n', "\r\n").as_bytes());
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn mutated_documents_match_saphyr(
            seed in any::<u64>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..3), 1..6),
        ) {
            let mut bytes = document(seed).into_bytes();
            for (at, with, op) in edits {
                let b = *with.get(MUTATION_BYTES);
                if bytes.is_empty() {
                    bytes.push(b);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = b,
                    1 => bytes.insert(i, b),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            let r = check(&bytes);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }
}

#[cfg(test)]
mod loader {
    //! Through the real loader: a file (plain and gzipped) loads the same, with the same
    //! diagnostics, on the fast path, after a fallback, and through saphyr alone.

    use std::io::Write;

    use crate::limits::{MAX_SCALAR_BYTES, MAX_SCALAR_SOURCE_BYTES};
    use crate::manifest::event::Pos;
    use crate::manifest::gen::{write_manifest, GenOptions};
    use crate::manifest::source::open;
    use crate::manifest::{load_path, load_reader, LoadOptions, LoadReport, Monitor};

    /// Load `path` through `load_path` (the fast path) and through saphyr alone.
    fn both(path: &std::path::Path) -> [(Vec<Monitor>, LoadReport); 2] {
        let opts = LoadOptions::default();
        let mut fast = Vec::new();
        let fast_report = load_path(path, &opts, |m| fast.push(m)).unwrap();
        let (reader, format) = open(path).unwrap();
        let mut slow = Vec::new();
        let slow_report =
            load_reader(reader, format, &path.display().to_string(), &opts, |m| slow.push(m));
        [(fast, fast_report), (slow, slow_report)]
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str, gz: bool) -> std::path::PathBuf {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        if gz {
            let mut w = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            w.write_all(text.as_bytes()).unwrap();
            w.finish().unwrap();
        } else {
            let mut w = file;
            w.write_all(text.as_bytes()).unwrap();
        }
        path
    }

    fn fleet(monitors: u64) -> String {
        let mut buf = Vec::new();
        write_manifest(&GenOptions { monitors, ..Default::default() }, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn fast_fallback_and_saphyr_load_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let plain = fleet(30);
        // A block scalar with an indentation digit late in the file: the fast path falls back
        // after 20-odd monitors.
        let exotic =
            plain.replacen("  - name: svc-00000025\n", "  - name: |2-\n      svc-00000025\n", 1);
        // A syntax error late in the file: saphyr's message and position.
        let broken = plain.replacen("  - name: svc-00000027\n", "  - name: [svc-00000027\n", 1);
        for (name, text) in [("plain", &plain), ("exotic", &exotic), ("broken", &broken)] {
            for gz in [false, true] {
                let file = format!("{name}.yaml{}", if gz { ".gz" } else { "" });
                let [(fast, fast_report), (slow, slow_report)] =
                    both(&write(&dir, &file, text, gz));
                assert_eq!(fast, slow, "{file}");
                assert_eq!(fast_report.problems.kept, slow_report.problems.kept, "{file}");
                assert_eq!(fast_report.monitors_seen, slow_report.monitors_seen, "{file}");
                if name == "broken" {
                    assert!(!fast_report.is_valid(), "{file}");
                } else {
                    assert_eq!(fast.len(), 30, "{file}: {:?}", fast_report.problems.kept);
                }
            }
        }
    }

    /// A manifest whose one monitor's `name` is written in `style` and is exactly `n` bytes
    /// long once read.
    fn named(style: &str, n: usize) -> String {
        // Lines of 99 bytes, each adding 100 (with the break or space between lines), after
        // a first line that makes up the rest.
        let lines = n / 100 - 10;
        let first = "a".repeat(n - 100 * lines);
        let rest = format!("      {}\n", "b".repeat(99)).repeat(lines);
        let value = match style {
            "plain" => "a".repeat(n),
            "plain, lines" => format!("{first}\n{rest}"),
            "double-quoted" => format!("\"{}\"", "a".repeat(n)),
            // Escapes throughout: the source is 4 times the value.
            "double-quoted, escapes" => format!("\"{}\"", "\\x41".repeat(n)),
            "single-quoted" => format!("'{}'", "a".repeat(n)),
            "literal" | "folded" => {
                let head = if style == "literal" { "|-" } else { ">-" };
                format!("{head}\n      {first}\n{rest}")
            }
            // Clipped: the value ends with one line break.
            "literal, clipped" => format!("|\n      {}\n", "a".repeat(n - 1)),
            _ => unreachable!("{style}"),
        };
        let value = value.trim_end_matches('\n');
        format!(
            "monitors:\n  - id: m\n    name: {value}\n    pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}\n"
        )
    }

    /// Where the value of `named(style, _)` is placed: a block scalar at its content (as
    /// saphyr places it), others where they start.
    fn value_pos(style: &str) -> Pos {
        if style.starts_with("literal") || style == "folded" {
            Pos { line: 4, column: 7 }
        } else {
            Pos { line: 3, column: 11 }
        }
    }

    const STYLES: [&str; 8] = [
        "plain",
        "plain, lines",
        "double-quoted",
        "double-quoted, escapes",
        "single-quoted",
        "literal",
        "folded",
        "literal, clipped",
    ];

    /// Exactly `MAX_SCALAR_BYTES` is accepted in every style, on the fast path and by saphyr
    /// alone; one byte more is an error at the value that names the bound.
    #[test]
    fn a_value_is_bounded_at_max_scalar_bytes_in_every_style() {
        let dir = tempfile::tempdir().unwrap();
        for style in STYLES {
            let at = write(&dir, "at.yaml", &named(style, MAX_SCALAR_BYTES), false);
            for (monitors, report) in both(&at) {
                assert!(report.is_valid(), "{style}: {:?}", report.problems.kept);
                assert_eq!(monitors[0].name.len(), MAX_SCALAR_BYTES, "{style}");
            }
            let past = write(&dir, "past.yaml", &named(style, MAX_SCALAR_BYTES + 1), false);
            for (monitors, report) in both(&past) {
                assert!(monitors.is_empty(), "{style}");
                let p = &report.problems.kept[0];
                assert_eq!(p.pos, value_pos(style), "{style}: {p:?}");
                let want = format!(
                    "a value of {} bytes, longer than the 1 MiB one value may hold",
                    MAX_SCALAR_BYTES + 1
                );
                assert_eq!(p.message, want, "{style}");
            }
        }
    }

    /// A value far past the bound is refused once `MAX_SCALAR_SOURCE_BYTES` have been read,
    /// not after it has been gathered whole (the fast scanner stops at the value bound and
    /// saphyr at the source bound).
    #[test]
    fn a_huge_value_is_refused_before_it_is_held_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Past the bound by more than saphyr's lookahead (16 chars), read before the count
        // restarts at the event before the value.
        let n = MAX_SCALAR_SOURCE_BYTES + 64;
        for style in ["plain", "literal"] {
            let path = write(&dir, "huge.yaml", &named(style, n), false);
            for (monitors, report) in both(&path) {
                assert!(monitors.is_empty(), "{style}");
                let p = &report.problems.kept[0];
                assert!(
                    p.message.starts_with("more than 8 MiB of input without a value ending"),
                    "{style}: {p:?}"
                );
                assert_eq!(p.pos, value_pos(style), "{style}: {p:?}");
            }
        }
    }
}
