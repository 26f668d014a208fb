//! A streaming JSON event reader with line/column positions.
//!
//! Why hand-written rather than serde_json: serde_json's streaming API (`StreamDeserializer`)
//! yields whole values, not events, and it gives no positions for nested values; building a
//! `serde_json::Value` for a manifest of millions would hold the whole document in memory.
//! This reader pulls bytes from a bounded buffer, emits one event at a time with the position
//! of its first character, and never holds more than one string at once. It is RFC 8259 JSON
//! (no comments, no trailing commas). Not for writing JSON.
//!
//! Speed (no crate gives streaming events with line/column positions at this rate): tokens
//! are scanned over the buffered bytes in runs (string bodies eight bytes at a time), columns
//! are counted per run, and a string's text is lent from the buffer (checked once) instead of
//! copied, so the loader copies each key and value once, into its per-monitor tree.

use std::io::Read;

use super::event::{EventSource, ParseEvent, Pos, RawItem, SyntaxError, READ_FAILED};
use crate::limits::{Size, MAX_DEPTH, MAX_RAW_ITEM_BYTES, MAX_SCALAR_BYTES, READ_BUFFER_BYTES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// In an object: the bool says whether at least one member was read.
    ObjectKey(bool),
    ObjectValue,
    ObjectNext,
    /// In an array: the bool says whether at least one element was read.
    ArrayValue(bool),
    ArrayNext,
}

pub struct JsonReader<R: Read> {
    reader: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    line: u32,
    column: u32,
    stack: Vec<Frame>,
    started: bool,
    finished: bool,
    scratch: Vec<u8>,
    /// The last scalar's text (see `EventSource::scalar`) when `lent` is `None`.
    text: String,
    /// The last scalar's text as a range of `buf` instead, already checked to be UTF-8 (the
    /// bool: and ASCII): the fast path copies a string once, into the caller's tree, not
    /// first into `text`. Valid until the next refill (`fill` copies it out first).
    lent: Option<(usize, usize, bool)>,
}

impl<R: Read> JsonReader<R> {
    pub fn new(reader: R) -> Self {
        Self::with_buffer(reader, READ_BUFFER_BYTES)
    }

    /// With a given buffer size (tests use tiny ones to cross refill boundaries everywhere).
    pub fn with_buffer(reader: R, buffer_bytes: usize) -> Self {
        assert!(buffer_bytes > 0);
        JsonReader {
            reader,
            buf: vec![0u8; buffer_bytes].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            line: 1,
            column: 1,
            stack: Vec::with_capacity(16),
            started: false,
            finished: false,
            scratch: Vec::with_capacity(256),
            text: String::new(),
            lent: None,
        }
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, column: self.column }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { pos: self.pos(), message: message.into() })
    }

    /// Copies a lent scalar out of the buffer, before the buffer is overwritten or moved.
    fn unlend(&mut self) {
        if let Some((a, b, _)) = self.lent.take() {
            self.text.clear();
            self.text.push_str(std::str::from_utf8(&self.buf[a..b]).unwrap_or_default());
        }
    }

    fn fill(&mut self) -> Result<bool, SyntaxError> {
        if self.start < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        // A key's text is still lent while its ':' is looked for.
        self.unlend();
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return self.err(format!("{READ_FAILED}: {e}")),
            }
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<Option<u8>, SyntaxError> {
        if self.start < self.end {
            return Ok(Some(self.buf[self.start]));
        }
        if self.fill()? {
            Ok(Some(self.buf[self.start]))
        } else {
            Ok(None)
        }
    }

    #[inline]
    fn bump(&mut self, b: u8) {
        self.start += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if b & 0xC0 != 0x80 {
            // Continuation bytes of a UTF-8 sequence do not start a new character.
            self.column += 1;
        }
    }

    /// Skips whitespace in whole-buffer runs (not per-byte `peek`/`bump` calls: this loop runs
    /// between every pair of tokens), keeping line and column up to date.
    // Inlined: it runs before every token, and the call cost more than this fast path.
    #[inline(always)]
    fn skip_ws(&mut self) -> Result<Option<u8>, SyntaxError> {
        // Most tokens follow another directly (minified JSON): no loop, no call.
        if self.start < self.end {
            let b = self.buf[self.start];
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Ok(Some(b));
            }
        }
        self.skip_ws_run()
    }

    fn skip_ws_run(&mut self) -> Result<Option<u8>, SyntaxError> {
        loop {
            let (mut line, mut column) = (self.line, self.column);
            let end = self.end;
            let mut i = self.start;
            while i < end {
                match self.buf[i] {
                    b' ' | b'\t' | b'\r' => column += 1,
                    b'\n' => {
                        line += 1;
                        column = 1;
                    }
                    b => {
                        self.start = i;
                        self.line = line;
                        self.column = column;
                        return Ok(Some(b));
                    }
                }
                i += 1;
            }
            self.start = end;
            self.line = line;
            self.column = column;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn expect_byte(&mut self, want: u8, what: &str) -> Result<(), SyntaxError> {
        match self.skip_ws()? {
            Some(b) if b == want => {
                self.bump(b);
                Ok(())
            }
            Some(b) => self.err(format!("expected {what}, found '{}'", printable(b))),
            None => self.err(format!("expected {what}, found end of input")),
        }
    }

    /// Reads a string: lent from the buffer (`self.lent`) or, when it has escapes or spans a
    /// refill, into `self.text` (reused, so a string allocates nothing once the buffer has
    /// grown to the longest string seen).
    fn read_string(&mut self) -> Result<(), SyntaxError> {
        // The opening quote is current.
        let start = self.pos();
        self.bump(b'"');
        // Fast path, nearly every string of a manifest: it ends in the buffer and has no
        // escapes, so it is checked here and lent from the buffer.
        let chunk = &self.buf[self.start..self.end];
        let mut i = plain_ascii_run(chunk);
        let mut ascii = true;
        while i < chunk.len() {
            match STRING_BYTE[chunk[i] as usize] {
                PLAIN => i += 1,
                HIGH => {
                    ascii = false;
                    i += 1;
                }
                _ => break,
            }
        }
        if i < chunk.len() && chunk[i] == b'"' && i <= MAX_SCALAR_BYTES {
            let columns =
                if ascii { i } else { chunk[..i].iter().filter(|&&b| b & 0xC0 != 0x80).count() };
            let ok = ascii || std::str::from_utf8(&chunk[..i]).is_ok();
            // Only checked text is lent (`scalar` relies on it).
            self.lent = ok.then_some((self.start, self.start + i, ascii));
            // Past the string and its closing quote (the position a UTF-8 error names).
            self.start += i + 1;
            self.column += columns as u32 + 1;
            if !ok {
                return self.err("string is not valid UTF-8");
            }
            return Ok(());
        }
        self.lent = None;
        self.scratch.clear();
        loop {
            // Fast path: copy a run of plain bytes straight from the buffer.
            if self.start < self.end {
                let chunk = &self.buf[self.start..self.end];
                let run = chunk
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .unwrap_or(chunk.len());
                if run > 0 {
                    let columns = chunk[..run].iter().filter(|&&b| b & 0xC0 != 0x80).count();
                    self.scratch.extend_from_slice(&chunk[..run]);
                    self.start += run;
                    self.column += columns as u32;
                    if self.scratch.len() > MAX_SCALAR_BYTES {
                        return Err(too_long(start));
                    }
                    continue;
                }
            }
            let Some(b) = self.peek()? else {
                return self.err("unterminated string (missing closing '\"')");
            };
            match b {
                b'"' => {
                    self.bump(b);
                    break;
                }
                b'\\' => {
                    self.bump(b);
                    self.read_escape()?;
                    // A string of escapes alone never takes the plain run's check above.
                    if self.scratch.len() > MAX_SCALAR_BYTES {
                        return Err(too_long(start));
                    }
                }
                b if b < 0x20 => {
                    return self.err("control character in string (escape it, e.g. \\n)");
                }
                // The buffer was just refilled: go back to the fast path.
                _ => continue,
            }
        }
        self.text.clear();
        match std::str::from_utf8(&self.scratch) {
            Ok(s) => {
                self.text.push_str(s);
                Ok(())
            }
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    fn read_escape(&mut self) -> Result<(), SyntaxError> {
        let Some(b) = self.peek()? else {
            return self.err("unterminated escape");
        };
        self.bump(b);
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.read_hex4()?;
                if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: the low half must follow as another \u escape.
                    if self.peek()? != Some(b'\\') {
                        return self.err("unpaired surrogate in \\u escape");
                    }
                    self.bump(b'\\');
                    if self.peek()? != Some(b'u') {
                        return self.err("unpaired surrogate in \\u escape");
                    }
                    self.bump(b'u');
                    let lo = self.read_hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return self.err("invalid low surrogate in \\u escape");
                    }
                    let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    char::from_u32(code).unwrap_or('\u{FFFD}')
                } else {
                    match char::from_u32(hi) {
                        Some(c) => c,
                        None => return self.err("invalid \\u escape (lone low surrogate)"),
                    }
                }
            }
            other => return self.err(format!("invalid escape '\\{}'", printable(other))),
        };
        let mut tmp = [0u8; 4];
        self.scratch.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        Ok(())
    }

    fn read_hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let Some(b) = self.peek()? else {
                return self.err("unterminated \\u escape");
            };
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return self.err("expected 4 hex digits after \\u"),
            };
            self.bump(b);
            v = v * 16 + u32::from(d);
        }
        Ok(v)
    }

    /// Numbers and the literals `true`, `false`, `null`: read a run of word characters (lent
    /// from the buffer, or into `self.text`) and check its grammar.
    fn read_word(&mut self) -> Result<(), SyntaxError> {
        let pos = self.pos();
        self.text.clear();
        self.lent = None;
        // Fast path: the word ends inside the buffer (a word is ASCII, so columns are bytes).
        let chunk = &self.buf[self.start..self.end];
        let run = chunk.iter().position(|&b| !is_word_byte(b));
        match run {
            Some(n) if n <= MAX_SCALAR_BYTES => {
                // Only ASCII bytes matched.
                self.lent = Some((self.start, self.start + n, true));
                self.start += n;
                self.column += n as u32;
            }
            _ => {
                self.scratch.clear();
                while let Some(b) = self.peek()? {
                    if is_word_byte(b) {
                        self.bump(b);
                        self.scratch.push(b);
                        if self.scratch.len() > MAX_SCALAR_BYTES {
                            return self.err("number too long");
                        }
                    } else {
                        break;
                    }
                }
                // Only ASCII bytes were pushed.
                self.text.push_str(std::str::from_utf8(&self.scratch).unwrap_or_default());
            }
        }
        let word = self.scalar();
        if matches!(word, "true" | "false" | "null") || is_json_number(word) {
            Ok(())
        } else {
            Err(SyntaxError {
                pos,
                message: format!("invalid JSON value '{word}' (strings must be in double quotes)"),
            })
        }
    }

    fn value_event(&mut self, b: u8) -> Result<(ParseEvent, Pos), SyntaxError> {
        let pos = self.pos();
        match b {
            b'{' => {
                self.bump(b);
                self.push(Frame::ObjectKey(false))?;
                Ok((ParseEvent::MapStart { anchor: 0 }, pos))
            }
            b'[' => {
                self.bump(b);
                self.push(Frame::ArrayValue(false))?;
                Ok((ParseEvent::SeqStart { anchor: 0 }, pos))
            }
            b'"' => {
                self.read_string()?;
                Ok((ParseEvent::Scalar { quoted: true, anchor: 0 }, pos))
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                self.read_word()?;
                Ok((ParseEvent::Scalar { quoted: false, anchor: 0 }, pos))
            }
            other => self.err(format!("expected a value, found '{}'", printable(other))),
        }
    }

    fn push(&mut self, frame: Frame) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return self.err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            *top = frame;
        }
    }
}

impl<R: Read> EventSource for JsonReader<R> {
    fn raw_item(&mut self) -> Result<Option<RawItem<'_>>, SyntaxError> {
        loop {
            let Some(top) = self.stack.last().copied() else { return Ok(None) };
            // At the end of the input `next_event` reports the unclosed list.
            let Some(b) = self.skip_ws()? else { return Ok(None) };
            match top {
                Frame::ArrayNext if b == b',' => {
                    self.bump(b);
                    self.set_top(Frame::ArrayValue(true));
                }
                Frame::ArrayValue(_) if b == b'{' => {
                    return Ok(Some(RawItem {
                        bytes: &self.buf[self.start..self.end],
                        eof: self.eof,
                        pos: self.pos(),
                    }));
                }
                // `]`, anything else, or not in a list: for `next_event`.
                _ => return Ok(None),
            }
        }
    }

    fn raw_more(&mut self) -> Result<bool, SyntaxError> {
        if self.eof {
            return Ok(false);
        }
        self.unlend();
        // Keep the item whole: move it to the front, and grow the buffer if it fills it.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_RAW_ITEM_BYTES {
                return Ok(false);
            }
            let mut bigger = vec![0u8; (self.buf.len() * 2).min(MAX_RAW_ITEM_BYTES)];
            bigger[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = bigger.into_boxed_slice();
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(true);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return self.err(format!("{READ_FAILED}: {e}")),
            }
        }
    }

    fn raw_consume(&mut self, n: usize) {
        debug_assert!(self.start + n <= self.end);
        debug_assert!(matches!(self.stack.last(), Some(Frame::ArrayValue(_))));
        let bytes = &self.buf[self.start..self.start + n];
        let (newlines, chars) = newlines_and_chars(bytes);
        if newlines == 0 {
            self.column += chars;
        } else {
            self.line += newlines;
            // The last line is the item's last few bytes (`}` on a line of its own at most).
            let last = bytes.iter().rposition(|&c| c == b'\n').unwrap_or(0);
            self.column = 1 + newlines_and_chars(&bytes[last + 1..]).1;
        }
        self.start += n;
        self.lent = None;
        self.set_top(Frame::ArrayNext);
    }

    fn scalar(&self) -> &str {
        match self.lent {
            Some((a, b, _)) => {
                let bytes = &self.buf[a..b];
                debug_assert!(std::str::from_utf8(bytes).is_ok());
                // SAFETY: `lent` is only set to a range that was checked to be UTF-8 (every
                // byte ASCII, or `from_utf8` succeeded) when it was read, and the buffer is not
                // written until the next refill, which takes `lent` first. Checking again
                // here cost a tenth of the JSON load time (a `from_utf8` call per key and
                // value, most of a dozen bytes).
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            None => &self.text,
        }
    }

    fn next_event(&mut self) -> Result<(ParseEvent, Pos), SyntaxError> {
        loop {
            let next = self.skip_ws()?;
            let pos = self.pos();
            let Some(top) = self.stack.last().copied() else {
                if !self.started {
                    self.started = true;
                    return match next {
                        Some(b) => self.value_event(b),
                        None => self.err("empty document"),
                    };
                }
                if self.finished {
                    return Ok((ParseEvent::End, pos));
                }
                return match next {
                    None => {
                        self.finished = true;
                        Ok((ParseEvent::End, pos))
                    }
                    Some(b) => self.err(format!(
                        "unexpected '{}' after the end of the document",
                        printable(b)
                    )),
                };
            };
            let Some(b) = next else {
                return self.err("unexpected end of input (unclosed '{' or '[')");
            };
            match top {
                Frame::ObjectKey(any) => {
                    if b == b'}' && !any {
                        self.bump(b);
                        self.stack.pop();
                        return Ok((ParseEvent::MapEnd, pos));
                    }
                    if b != b'"' {
                        return self.err(format!(
                            "expected a key in double quotes, found '{}'",
                            printable(b)
                        ));
                    }
                    self.read_string()?;
                    // Nearly always the very next byte.
                    if self.start < self.end && self.buf[self.start] == b':' {
                        self.start += 1;
                        self.column += 1;
                    } else {
                        self.expect_byte(b':', "':' after the key")?;
                    }
                    self.set_top(Frame::ObjectValue);
                    return Ok((ParseEvent::Scalar { quoted: true, anchor: 0 }, pos));
                }
                Frame::ObjectValue => {
                    self.set_top(Frame::ObjectNext);
                    return self.value_event(b);
                }
                Frame::ObjectNext => match b {
                    b',' => {
                        self.bump(b);
                        self.set_top(Frame::ObjectKey(true));
                    }
                    b'}' => {
                        self.bump(b);
                        self.stack.pop();
                        return Ok((ParseEvent::MapEnd, pos));
                    }
                    _ => {
                        return self.err(format!("expected ',' or '}}', found '{}'", printable(b)))
                    }
                },
                Frame::ArrayValue(any) => {
                    if b == b']' && !any {
                        self.bump(b);
                        self.stack.pop();
                        return Ok((ParseEvent::SeqEnd, pos));
                    }
                    self.set_top(Frame::ArrayNext);
                    return self.value_event(b);
                }
                Frame::ArrayNext => match b {
                    b',' => {
                        self.bump(b);
                        self.set_top(Frame::ArrayValue(true));
                    }
                    b']' => {
                        self.bump(b);
                        self.stack.pop();
                        return Ok((ParseEvent::SeqEnd, pos));
                    }
                    _ => return self.err(format!("expected ',' or ']', found '{}'", printable(b))),
                },
            }
        }
    }
}

/// Byte classes inside a JSON string, for the fast scan: a table lookup per byte instead of
/// three comparisons and a UTF-8 check.
const PLAIN: u8 = 0;
/// The end of a run: `"`, `\\` or a control character.
const STOP: u8 = 1;
/// A byte of a multi-byte UTF-8 character (the string must be validated, columns counted).
const HIGH: u8 = 2;

static STRING_BYTE: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = if b < 0x20 || b == b'"' as usize || b == b'\\' as usize {
            STOP
        } else if b >= 0x80 {
            HIGH
        } else {
            PLAIN
        };
        b += 1;
    }
    t
};

/// Word-at-a-time tests over eight string bytes (little-endian): the JSON reader's and the
/// direct decoder's inner loop, over every key and value. Hand-written: no crate does this
/// over a borrowed buffer with our set of stop bytes.
pub(super) mod swar {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// The high bit of each byte of `x` that is zero. A false flag can only sit above a true
    /// one (a borrow runs upward), so the lowest flag is exact.
    #[inline(always)]
    pub fn zero_bytes(x: u64) -> u64 {
        x.wrapping_sub(LO) & !x & HI
    }

    /// Flags the bytes equal to `b` (lowest flag exact).
    #[inline(always)]
    pub fn bytes_equal(w: u64, b: u8) -> u64 {
        zero_bytes(w ^ (LO * u64::from(b)))
    }

    /// Flags the bytes that end a plain run in a JSON string: `"`, `\\`, a control character
    /// or a byte past ASCII (lowest flag exact).
    #[inline(always)]
    pub fn string_stops(w: u64) -> u64 {
        bytes_equal(w, b'"')
            | bytes_equal(w, b'\\')
            | (w.wrapping_sub(LO * 0x20) & !w & HI)
            | (w & HI)
    }

    /// The eight bytes at `i`, if there are eight.
    #[inline(always)]
    pub fn word_at(b: &[u8], i: usize) -> Option<u64> {
        let w: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(w))
    }
}

/// How many leading bytes of `chunk`, in whole words of eight, are plain ASCII string bytes
/// (no [`swar::string_stops`] byte); the caller's byte loop goes on from there.
fn plain_ascii_run(chunk: &[u8]) -> usize {
    let mut i = 0;
    while let Some(w) = swar::word_at(chunk, i) {
        if swar::string_stops(w) != 0 {
            break;
        }
        i += 8;
    }
    i
}

/// Newlines and characters (every byte but UTF-8 continuation bytes) in `b`: one pass, in
/// runs of up to 255 bytes counted in `u8`s, so the compiler vectorises it.
fn newlines_and_chars(b: &[u8]) -> (u32, u32) {
    let (mut newlines, mut chars) = (0u32, 0u32);
    for run in b.chunks(255) {
        let (mut n, mut c) = (0u8, 0u8);
        for &x in run {
            n += u8::from(x == b'\n');
            c += u8::from(x & 0xC0 != 0x80);
        }
        newlines += u32::from(n);
        chars += u32::from(c);
    }
    (newlines, chars)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

/// A string past [`MAX_SCALAR_BYTES`], reported where it starts.
fn too_long(start: Pos) -> SyntaxError {
    SyntaxError {
        pos: start,
        message: format!(
            "string longer than the {} one value may hold",
            Size::bytes(MAX_SCALAR_BYTES)
        ),
    }
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else {
        format!("\\x{b:02x}")
    }
}

/// RFC 8259 number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::event::{collect, Owned};

    fn events(src: &str) -> Result<Vec<(Owned, Pos)>, SyntaxError> {
        collect(&mut JsonReader::new(src.as_bytes()))
    }

    fn s(v: &str, quoted: bool) -> Owned {
        Owned::of(ParseEvent::Scalar { quoted, anchor: 0 }, v)
    }

    fn e(event: ParseEvent) -> Owned {
        Owned::of(event, "")
    }

    /// A string of exactly `MAX_SCALAR_BYTES` is read, one byte more is an error at the
    /// string's start, whether it is written plain, with escapes throughout, or mixed.
    #[test]
    fn a_string_is_bounded_at_max_scalar_bytes() {
        let written = |n: usize, form: &str| match form {
            "plain" => "a".repeat(n),
            "escapes" => "\\n".repeat(n),
            _ => "a\\n".repeat(n / 2) + &"a".repeat(n % 2),
        };
        for form in ["plain", "escapes", "mixed"] {
            let at = format!("[\"{}\"]", written(MAX_SCALAR_BYTES, form));
            let got = events(&at).unwrap();
            assert_eq!(got[1].0.text.len(), MAX_SCALAR_BYTES, "{form}");
            let past = format!("[\"{}\"]", written(MAX_SCALAR_BYTES + 1, form));
            let e = events(&past).unwrap_err();
            assert_eq!(e.pos, Pos { line: 1, column: 2 }, "{form}");
            assert_eq!(e.message, "string longer than the 1 MiB one value may hold", "{form}");
        }
    }

    #[test]
    fn events_and_positions() {
        let ev = events("{\"a\": [1, \"x\\u00e9\\ud83d\\ude00\"],\n \"b\": {}}").unwrap();
        let kinds: Vec<Owned> = ev.iter().map(|(e, _)| e.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                e(ParseEvent::MapStart { anchor: 0 }),
                s("a", true),
                e(ParseEvent::SeqStart { anchor: 0 }),
                s("1", false),
                s("xé😀", true),
                e(ParseEvent::SeqEnd),
                s("b", true),
                e(ParseEvent::MapStart { anchor: 0 }),
                e(ParseEvent::MapEnd),
                e(ParseEvent::MapEnd),
            ]
        );
        assert_eq!(ev[6].1, Pos { line: 2, column: 2 });
        assert_eq!(ev[3].1, Pos { line: 1, column: 8 });
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = events("{\"a\": 1,\n  \"b\" 2}").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 7 });
        assert!(e.message.contains("':'"), "{}", e.message);
        assert!(events("[1, 2").is_err());
        assert!(events("{\"a\": tru}").is_err());
        assert!(events("[01]").is_err());
        assert!(events("[1,]").is_err());
        assert!(events("{} x").is_err());
        assert!(events("").is_err());
        assert!(events(&"[".repeat(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn tiny_buffers_give_the_same_events() {
        let src =
            "{\"a\": [1, \"xé\\n\\u00e9 long string here\", true, null],\n \"b\": {\"c\": -1.5e3}}";
        let want = events(src).unwrap();
        for size in 1..9 {
            let got = collect(&mut JsonReader::with_buffer(src.as_bytes(), size)).unwrap();
            assert_eq!(got, want, "buffer of {size} bytes");
        }
    }

    /// The fast paths (a token wholly in the buffer) and the slow ones (a token across a
    /// refill) must give the same events, texts, positions and errors.
    #[test]
    fn tiny_buffers_give_the_same_errors_and_columns() {
        let inputs: [&[u8]; 9] = [
            "{\"é\": \"ü😀x\",\n  \"k\": [\"a\", 12, nul]}".as_bytes(),
            b"{\"a\": \"x\ty\"}",
            b"{\"a\": \"\xff\xfe\"}",
            "[\"日本語\", \"b\"  ,\r\n  -0.5e+3, \"c\\u00e9\"]".as_bytes(),
            b"[1, 2, 3x]",
            b"[\"unterminated",
            b"[\"bad \\q escape\"]",
            b"\n\n  {\"a\":\n [true, false, null, \"\"]}  ",
            "[\"é\"\"é\"]".as_bytes(),
        ];
        for src in inputs {
            let want = collect(&mut JsonReader::new(src));
            for size in 1..12 {
                let got = collect(&mut JsonReader::with_buffer(src, size));
                assert_eq!(
                    got,
                    want,
                    "buffer of {size} bytes, input {:?}",
                    String::from_utf8_lossy(src)
                );
            }
        }
        let e = collect(&mut JsonReader::new("[\"é\", 1, \"x\u{1}\"]".as_bytes())).unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 12 }, "{}", e.message);
    }

    #[test]
    fn plain_runs_stop_before_any_special_byte() {
        let plain = b"abcdefghijklmnopqrstuvwxyz0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~";
        assert_eq!(plain_ascii_run(plain), plain.len() / 8 * 8);
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n', 0x7f + 1, 0xff] {
            for at in 0..24 {
                let mut s = plain[..24].to_vec();
                s[at] = special;
                let run = plain_ascii_run(&s);
                assert!(run <= at, "byte {special:#x} at {at}: run {run}");
                assert_eq!(run % 8, 0);
                assert!(run + 8 > at, "byte {special:#x} at {at}: run {run} stops early");
            }
        }
        assert_eq!(plain_ascii_run(b"abc"), 0);
    }

    #[test]
    fn numbers() {
        for ok in ["0", "-1", "1.5", "1e9", "-0.5E-3", "123"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "0x10"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
