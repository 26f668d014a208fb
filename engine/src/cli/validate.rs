//! `cpra validate FILE... [--json] [--lenient]`: the same checks `cpra run` makes before it
//! starts (one pass, in the loader), so a file valid here is one `run` starts on.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE};
use crate::limits::MAX_PROBLEMS;
use crate::manifest::{load_path, LoadOptions, LoadReport};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files: YAML or JSON, optionally gzipped (.gz).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON object per problem (one per line), then a summary object per file.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fields: UnknownFieldArgs,
}

/// How unknown fields are taken: shared by `validate` and `run`, so both read a file alike.
#[derive(Debug, Args)]
pub struct UnknownFieldArgs {
    /// Report unknown fields as warnings rather than errors (a misspelt field is then
    /// ignored and its default used). The old --strict is still accepted and does nothing:
    /// unknown fields are errors by default.
    #[arg(long)]
    pub lenient: bool,
    /// No effect, kept so old scripts keep working: unknown fields are errors by default now
    /// (use --lenient for warnings).
    #[arg(long, hide = true)]
    pub strict: bool,
}

impl UnknownFieldArgs {
    pub fn options(&self) -> LoadOptions<'static> {
        LoadOptions { lenient: self.lenient, ..LoadOptions::default() }
    }
}

/// Validate each file; the exit code is the worst: 2 if any file cannot be read, else 1 if any
/// has errors, else 0.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> i32 {
    let opts = args.fields.options();
    let mut code = EXIT_OK;
    for path in &args.files {
        match load_path(path, &opts, |_monitor| {}) {
            Err(e) => {
                code = EXIT_UNREADABLE;
                if args.json {
                    let v = serde_json::json!({"severity": "error", "class": "unreadable", "file": e.file, "message": e.error.to_string()});
                    let _ = writeln!(out, "{v}");
                } else {
                    let _ = writeln!(out, "error: cannot read {}: {}", e.file, e.error);
                }
            }
            Ok(report) => {
                let p = &report.problems;
                if args.json {
                    for d in &p.kept {
                        let _ = writeln!(out, "{}", d.to_json());
                    }
                    let v = serde_json::json!({
                        "summary": true,
                        "file": report.file,
                        "format": report.format.map(|f| f.as_str()),
                        "monitors": report.monitors_seen,
                        "valid_monitors": report.monitors_loaded,
                        "errors": p.errors,
                        "warnings": p.warnings,
                        "valid": report.is_valid(),
                    });
                    let _ = writeln!(out, "{v}");
                } else {
                    write_human(&report, out);
                }
                // Cut short or corrupt (a truncated .gz): unreadable, as a missing file is.
                if report.unreadable {
                    code = EXIT_UNREADABLE;
                } else if !report.is_valid() && code == EXIT_OK {
                    code = EXIT_INVALID;
                }
            }
        }
    }
    code
}

/// The human report of one file: each problem kept, then a verdict line (also what
/// `cpra run` prints when it refuses to start).
pub fn write_human(report: &LoadReport, out: &mut dyn Write) {
    let p = &report.problems;
    let more = || format!("... and {} more problems", p.total() - p.kept.len());
    for (i, d) in p.kept.iter().enumerate() {
        if i == MAX_PROBLEMS {
            // The syntax error that ended the read, kept past the bound: after the gap.
            let _ = writeln!(out, "{} (not shown); the read stopped at:", more());
        }
        let _ = writeln!(out, "{d}");
    }
    if p.total() > p.kept.len() && p.kept.len() <= MAX_PROBLEMS {
        let _ = writeln!(out, "{} (only the first {MAX_PROBLEMS} are shown)", more());
    }
    let verdict = if report.is_valid() { "valid" } else { "INVALID" };
    let _ = writeln!(
        out,
        "{}: {verdict}: {} monitors, {} errors, {} warnings",
        report.file, report.monitors_seen, p.errors, p.warnings
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_str, LoadOptions};

    /// Past the bound on problems shown, the syntax error that ended the read is still shown,
    /// after a line that counts the problems left out.
    #[test]
    fn the_syntax_error_that_ended_the_read_is_shown_past_the_bound() {
        let monitor = "  - name: m\n    pulse_check: {type: tcp, config: {host: h, port: 0}}\n";
        let text = format!("monitors:\n{}  - name: [unclosed\n", monitor.repeat(MAX_PROBLEMS + 5));
        let (_, report) = load_str(&text, None, &LoadOptions::default());
        let mut out = Vec::new();
        write_human(&report, &mut out);
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), MAX_PROBLEMS + 3, "{out}");
        assert!(lines[MAX_PROBLEMS].ends_with("(not shown); the read stopped at:"), "{out}");
        assert!(lines[MAX_PROBLEMS + 1].contains("YAML syntax error"), "{out}");
        assert!(lines[MAX_PROBLEMS + 2].contains(": INVALID: "), "{out}");
    }
}
