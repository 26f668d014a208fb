//! `cpra validate FILE... [--json] [--strict]`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE};
use crate::manifest::{load_path, LoadOptions, MAX_PROBLEMS};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files: YAML or JSON, optionally gzipped (.gz).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON object per problem (one per line), then a summary object per file.
    #[arg(long)]
    pub json: bool,
    /// Treat unknown fields as errors rather than warnings.
    #[arg(long)]
    pub strict: bool,
}

/// Validate each file; the exit code is the worst: 2 if any file cannot be read, else 1 if any
/// has errors, else 0.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> i32 {
    let opts = LoadOptions { strict: args.strict, ..LoadOptions::default() };
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
                    for d in &p.kept {
                        let _ = writeln!(out, "{d}");
                    }
                    if p.total() > p.kept.len() {
                        let _ = writeln!(
                            out,
                            "... and {} more problems (only the first {MAX_PROBLEMS} are shown)",
                            p.total() - p.kept.len()
                        );
                    }
                    let verdict = if report.is_valid() { "valid" } else { "INVALID" };
                    let _ = writeln!(
                        out,
                        "{}: {verdict}: {} monitors, {} errors, {} warnings",
                        report.file, report.monitors_seen, p.errors, p.warnings
                    );
                }
                if !report.is_valid() && code == EXIT_OK {
                    code = EXIT_INVALID;
                }
            }
        }
    }
    code
}
