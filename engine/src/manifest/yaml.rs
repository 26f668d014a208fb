//! YAML events with positions, from saphyr-parser's event parser, read from a stream.
//!
//! saphyr-parser is a pull parser that gives each event a line/column marker, so the loader
//! can report `line 88, column 11` without building a document tree. Input is decoded from
//! bytes to chars as it is read ([`Utf8Chars`]), so a huge file is never held whole in memory.
//! Not for writing YAML.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, Read};
use std::rc::Rc;

use saphyr_parser::{BufferedInput, Event as YEvent, Parser, ScalarStyle};

use super::event::{EventSource, ParseEvent, Pos, SyntaxError, READ_FAILED};
use crate::limits::{Size, MAX_SCALAR_BYTES, MAX_SCALAR_SOURCE_BYTES, READ_BUFFER_BYTES};

/// Decodes UTF-8 bytes from a reader into chars. An invalid sequence becomes U+FFFD and is
/// remembered so the loader can report it, rather than panicking or silently accepting it.
pub struct Utf8Chars<R: BufRead> {
    reader: R,
    /// Set on the first invalid sequence or read error, for the reader to report.
    problem: Rc<RefCell<Option<String>>>,
    /// 1-based character number of the first invalid sequence.
    invalid_at_char: Option<u64>,
    chars: u64,
    io_error: Option<String>,
    /// Bytes read since the reader last handed out an event (it resets this): past
    /// [`MAX_SCALAR_SOURCE_BYTES`] the input ends early, with a problem to report, so saphyr
    /// never gathers a huge scalar whole.
    since_event: Rc<Cell<usize>>,
}

impl<R: BufRead> Utf8Chars<R> {
    pub fn new(reader: R) -> Self {
        Utf8Chars {
            reader,
            problem: Rc::new(RefCell::new(None)),
            invalid_at_char: None,
            chars: 0,
            io_error: None,
            since_event: Rc::new(Cell::new(0)),
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        loop {
            match self.reader.fill_buf() {
                Ok([]) => return None,
                Ok(buf) => {
                    let b = buf[0];
                    self.reader.consume(1);
                    self.since_event.set(self.since_event.get() + 1);
                    return Some(b);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.io_error = Some(e.to_string());
                    self.problem.borrow_mut().get_or_insert_with(|| format!("{READ_FAILED}: {e}"));
                    return None;
                }
            }
        }
    }

    fn peek_byte(&mut self) -> Option<u8> {
        match self.reader.fill_buf() {
            Ok(buf) => buf.first().copied(),
            Err(_) => None,
        }
    }

    fn invalid(&mut self) -> char {
        if self.invalid_at_char.is_none() {
            self.invalid_at_char = Some(self.chars);
            self.problem.borrow_mut().get_or_insert_with(|| {
                format!("invalid UTF-8 at character {} (save the file as UTF-8)", self.chars)
            });
        }
        '\u{FFFD}'
    }
}

impl<R: BufRead> Iterator for Utf8Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.since_event.get() >= MAX_SCALAR_SOURCE_BYTES {
            self.problem.borrow_mut().get_or_insert_with(|| {
                format!(
                    "more than {} of input without a value ending (a value longer than the \
                     {} allowed, or that much comment or blank space)",
                    Size::bytes(MAX_SCALAR_SOURCE_BYTES),
                    Size::bytes(MAX_SCALAR_BYTES)
                )
            });
            return None;
        }
        let b0 = self.next_byte()?;
        self.chars += 1;
        if b0 < 0x80 {
            return Some(b0 as char);
        }
        let (len, init) = match b0 {
            0xC2..=0xDF => (2, u32::from(b0 & 0x1F)),
            0xE0..=0xEF => (3, u32::from(b0 & 0x0F)),
            0xF0..=0xF4 => (4, u32::from(b0 & 0x07)),
            _ => return Some(self.invalid()),
        };
        let mut code = init;
        for _ in 1..len {
            match self.peek_byte() {
                Some(b) if b & 0xC0 == 0x80 => {
                    self.next_byte();
                    code = (code << 6) | u32::from(b & 0x3F);
                }
                _ => return Some(self.invalid()),
            }
        }
        match char::from_u32(code) {
            Some(c) if c.len_utf8() == len => Some(c),
            _ => Some(self.invalid()),
        }
    }
}

pub struct YamlReader<R: Read + 'static> {
    parser: Parser<'static, BufferedInput<Utf8Chars<std::io::BufReader<R>>>>,
    problem: Rc<RefCell<Option<String>>>,
    /// Shared with the char decoder: reset at each event.
    since_event: Rc<Cell<usize>>,
    done: bool,
    /// Documents started so far, and where a later one's `---` was: the loader refuses a
    /// second document at its first event, which is to name the `---`, not what follows it.
    documents: u32,
    later_document: Option<Pos>,
    /// The last scalar's text (see `EventSource::scalar`).
    text: String,
}

impl<R: Read + 'static> YamlReader<R> {
    pub fn new(reader: R) -> Self {
        let chars = Utf8Chars::new(std::io::BufReader::with_capacity(READ_BUFFER_BYTES, reader));
        let problem = Rc::clone(&chars.problem);
        let since_event = Rc::clone(&chars.since_event);
        YamlReader {
            parser: Parser::new_from_iter(chars),
            problem,
            since_event,
            done: false,
            documents: 0,
            later_document: None,
            text: String::new(),
        }
    }
}

fn pos_of(marker: &saphyr_parser::Marker) -> Pos {
    Pos {
        line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
        column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
    }
}

impl<R: Read + 'static> EventSource for YamlReader<R> {
    fn scalar(&self) -> &str {
        &self.text
    }

    fn next_event(&mut self) -> Result<(ParseEvent, Pos), SyntaxError> {
        loop {
            if self.done {
                return Ok((ParseEvent::End, Pos::default()));
            }
            let Some(next) = self.parser.next_event() else {
                self.done = true;
                return Ok((ParseEvent::End, Pos::default()));
            };
            self.since_event.set(0);
            let pos = match &next {
                Ok((_, span)) => pos_of(&span.start),
                Err(e) => pos_of(e.marker()),
            };
            if let Some(message) = self.problem.borrow_mut().take() {
                // Before saphyr's own error: an input ended early (too long a value, a read
                // error) makes saphyr complain about the end. The scanner reads ahead, so the
                // position is near, not at, the bad bytes.
                self.done = true;
                return Err(SyntaxError { pos, message });
            }
            let (ev, _) = next.map_err(|e| SyntaxError {
                pos: pos_of(e.marker()),
                message: format!("YAML syntax error: {}", e.info()),
            })?;
            let out = match ev {
                YEvent::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        self.later_document = Some(pos);
                    }
                    continue;
                }
                YEvent::Nothing | YEvent::StreamStart => continue,
                YEvent::DocumentEnd => continue,
                YEvent::StreamEnd => {
                    self.done = true;
                    ParseEvent::End
                }
                YEvent::Alias(id) => ParseEvent::Alias(id),
                YEvent::Scalar(value, style, anchor, _tag) => {
                    if value.len() > MAX_SCALAR_BYTES {
                        self.done = true;
                        return Err(SyntaxError {
                            pos,
                            message: format!(
                                "a value of {} bytes, longer than the {} one value may hold",
                                value.len(),
                                Size::bytes(MAX_SCALAR_BYTES)
                            ),
                        });
                    }
                    self.text.clear();
                    self.text.push_str(&value);
                    ParseEvent::Scalar { quoted: style != ScalarStyle::Plain, anchor }
                }
                YEvent::SequenceStart(anchor, _) => ParseEvent::SeqStart { anchor },
                YEvent::SequenceEnd => ParseEvent::SeqEnd,
                YEvent::MappingStart(anchor, _) => ParseEvent::MapStart { anchor },
                YEvent::MappingEnd => ParseEvent::MapEnd,
            };
            return Ok((out, self.later_document.take().unwrap_or(pos)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::event::{collect, Owned};

    #[test]
    fn yaml_events_with_positions() {
        let src = "a:\n  - 1\n  - \"x\"\nb: {c: d}\n";
        let mut r = YamlReader::new(std::io::Cursor::new(src.as_bytes().to_vec()));
        let got = collect(&mut r).unwrap();
        assert_eq!(got[0].0, Owned::of(ParseEvent::MapStart { anchor: 0 }, ""));
        assert_eq!(got[3].0, Owned::of(ParseEvent::Scalar { quoted: false, anchor: 0 }, "1"));
        assert_eq!(got[3].1, Pos { line: 2, column: 5 });
        assert_eq!(got[4].0, Owned::of(ParseEvent::Scalar { quoted: true, anchor: 0 }, "x"));
        assert_eq!(got[6].1, Pos { line: 4, column: 1 });
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error() {
        let mut bytes = b"a: 1\nb: x".to_vec();
        bytes.push(0xFF);
        bytes.extend_from_slice(b"y\nc: 2\n");
        let mut r = YamlReader::new(std::io::Cursor::new(bytes));
        let err = loop {
            match r.next_event() {
                Ok((ParseEvent::End, _)) => panic!("no error"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(err.message.contains("invalid UTF-8"), "{}", err.message);
    }

    #[test]
    fn utf8_decoding() {
        let bytes = "é😀a".as_bytes().to_vec();
        let s: String = Utf8Chars::new(&bytes[..]).collect();
        assert_eq!(s, "é😀a");
        let bad = [b'a', 0xFF, b'b', 0xE2, 0x82];
        let mut it = Utf8Chars::new(&bad[..]);
        let s: String = (&mut it).collect();
        assert_eq!(s, "a\u{FFFD}b\u{FFFD}");
        assert_eq!(it.invalid_at_char, Some(2), "1-based character number");
    }
}
