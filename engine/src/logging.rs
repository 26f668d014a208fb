//! What CPRA's log lines look like on stderr: one event, one line, whatever a manifest holds.
//!
//! - Human lines escape control characters (CR, LF, ESC, the other C0 and C1 codes) in every
//!   field and message, at one place, the field formatter ([`EscapedFields`]): a monitor named
//!   `a\r\nb` cannot split a line in two or forge one, and `\x1b[31m` cannot recolour a
//!   terminal. JSON lines escape them by being JSON.
//! - Colour only on a terminal, and never with `NO_COLOR` set (<https://no-color.org>).
//! - With `--log-format json`, what `cpra run` prints as plain lines (status lines,
//!   `stopping`, `stopped`, a refused manifest's problems) goes through the logger as well
//!   ([`LogLines`]), so every line on stderr parses as JSON.
//!
//! What it is for: the subscriber and the escaping. What it is not for: which values are
//! secrets (`redact`).

use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// Set once the JSON logger is installed: progress redraws (plain text) are then left out.
static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the tracing subscriber on stderr, JSON or human. `RUST_LOG` overrides
/// `default_level`. A second call (tests, demo after run) is a no-op.
pub fn init(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR")));
    let installed =
        if json { builder.json().try_init() } else { builder.fmt_fields(EscapedFields).try_init() };
    if installed.is_ok() {
        JSON.store(json, Ordering::Relaxed);
    }
}

/// Whether the installed logger writes JSON.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Writes a log notifier's alert line (a JSON object) to the process log: with the JSON
/// logger, the object itself is the line (a reader parses it as it is, not as a string inside
/// another event's `message`); with the human logger, an info event of target `cpra::alert`
/// whose message is the object (JSON holds no control character to escape).
pub fn alert_line(line: &str) {
    debug_assert!(!line.contains('\n'));
    if is_json() {
        let mut err = std::io::stderr().lock();
        // A failed write to stderr has nowhere to be reported.
        let _ = err.write_all(line.as_bytes());
        let _ = err.write_all(b"\n");
    } else {
        tracing::info!(target: "cpra::alert", "{line}");
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `text` with control characters written as escapes: `\n`, `\r`, `\t`, and `\u{1b}` for
/// the others (C0, DEL, C1). Everything else, `\` included, as it is.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape_into(f, self.0)
    }
}

fn escape_into(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    if !text.chars().any(char::is_control) {
        return out.write_str(text);
    }
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// The human field formatter: tracing-subscriber's default layout (`message`, then
/// `name=value` pairs), every value escaped (see [`Escaped`]). Field names are the code's
/// own and are written as they are.
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor =
            EscapingVisitor { writer, first: true, result: Ok(()), scratch: String::new() };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
    /// A value's text before it is escaped (logging allocates; the check path never logs).
    scratch: String,
}

impl EscapingVisitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.scratch.clear();
        if self.scratch.write_fmt(value).is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.first) { "" } else { " " };
        self.result = match name {
            "message" => write!(self.writer, "{separator}{}", Escaped(&self.scratch)),
            name => write!(
                self.writer,
                "{separator}{}={}",
                name.trim_start_matches("r#"),
                Escaped(&self.scratch)
            ),
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As tracing-subscriber does: a message bare, another string field quoted.
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

/// A writer whose every line becomes a log event (`cpra run --log-format json`): what the
/// command would print as plain text comes out as JSON lines like the rest. A line starting
/// `error:` is logged as an error, `warning:` as a warning, anything else as info. A line
/// longer than [`crate::limits::MAX_LOG_LINE_BYTES`] is logged in pieces rather than held.
#[derive(Default)]
pub struct LogLines {
    pending: Vec<u8>,
}

impl LogLines {
    fn emit(line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("error: ") {
            tracing::error!(target: "cpra", "{rest}");
        } else if let Some(rest) = line.strip_prefix("warning: ") {
            tracing::warn!(target: "cpra", "{rest}");
        } else {
            tracing::info!(target: "cpra", "{line}");
        }
    }
}

impl Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            LogLines::emit(&self.pending[..end]);
            self.pending.drain(..=end);
        }
        if self.pending.len() > crate::limits::MAX_LOG_LINE_BYTES {
            LogLines::emit(&self.pending);
            self.pending.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            LogLines::emit(&self.pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_nothing_else() {
        let table: &[(&str, &str)] = &[
            ("plain name", "plain name"),
            ("a\r\nb", "a\\r\\nb"),
            ("\x1b[31mred", "\\u{1b}[31mred"),
            ("tab\there", "tab\\there"),
            ("nul\0 del\x7f c1\u{85}", "nul\\u{0} del\\u{7f} c1\\u{85}"),
            ("back\\slash é ✓", "back\\slash é ✓"),
        ];
        for (input, want) in table {
            assert_eq!(Escaped(input).to_string(), *want, "{input:?}");
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".into())));
        // NO_COLOR set to the empty string does not count (no-color.org).
        assert!(colour(true, Some("".into())));
    }
}
