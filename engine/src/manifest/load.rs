//! The streaming loader: reads events, builds one monitor's tree at a time, decodes it, hands
//! the `Monitor` to the caller, and drops the tree. For JSON, a monitor written the usual way
//! is first tried on the direct decoder (`json_direct`: one pass over its bytes, no events, no
//! tree); anything it would have to say a word about takes the tree path. `endpoints` and
//! `notification_groups` may come before or after `monitors`; references to them are checked
//! at the end, against the positions remembered when they were made.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::decode::{
    decode_monitor, decode_notify, unknown_field_hint, Ctx, FieldPath, GroupNames, Interners,
    ENDPOINT_FIELDS, TOP_FIELDS,
};
use super::diagnostic::{choices_hint, Class, Diagnostic, Level, Problems};
use super::env::{Env, ProcessEnv};
use super::event::{EventSource, ParseEvent, Pos, SyntaxError, READ_FAILED};
use super::json::JsonReader;
use super::json_direct::{DirectDecoder, Miss, Step};
use super::node::{build, Anchors, Arena, Node, NodeKind, Tree};
use super::schema::{Code, CodeTarget, GroupId, Monitor, Notify};
use super::source::{open, open_counting, open_reader, Format};
use super::yaml_scan::{yaml_source, Reopen};
use crate::limits::MAX_UNKNOWN_TOP_KEYS;

pub struct LoadOptions<'a> {
    /// Unknown fields are warnings instead of errors (`--lenient`).
    pub lenient: bool,
    /// Where `${NAME}` values come from.
    pub env: &'a dyn Env,
    /// JSON: decode monitors straight from their bytes where they need no word said about
    /// them (see `json_direct`); the rest take the general path. Default true. False sends
    /// every monitor through the general path: for differential tests and benchmarks, since
    /// both give the same monitors and problems.
    pub direct_json: bool,
    /// When set, the file's bytes read so far are added to it as the load goes (compressed
    /// bytes for a `.gz`; a YAML file re-read from its start by the fallback is not counted
    /// again): `cpra run` shows a load's progress from it.
    pub read_bytes: Option<Arc<AtomicU64>>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions { lenient: false, env: &ProcessEnv, direct_json: true, read_bytes: None }
    }
}

/// Named endpoints and notification groups, resolved after the whole file is read.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// `endpoints`, in file order.
    pub endpoints: Vec<(String, Arc<Notify>)>,
    /// Groups by [`GroupId`] (numbered as monitors first name them; groups no monitor names
    /// come after): name and endpoint indexes into `endpoints`.
    pub groups: Vec<(String, Vec<usize>)>,
}

impl Registry {
    /// The endpoints a `notify_group` code sends to.
    pub fn group_endpoints(
        &self,
        id: GroupId,
    ) -> impl Iterator<Item = &(String, Arc<Notify>)> + '_ {
        self.groups
            .get(id.0 as usize)
            .map(|(_, idx)| idx.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(|&i| self.endpoints.get(i))
    }

    /// Every destination of a code, whether written inline (`notify`) or through a group
    /// (`notify_group`): one delivery per item.
    pub fn destinations<'a>(
        &'a self,
        code: &'a Code,
    ) -> impl Iterator<Item = &'a Arc<Notify>> + 'a {
        let (inline, group) = match &code.target {
            CodeTarget::Notify(n) => (Some(n), None),
            CodeTarget::Group { id, .. } => (None, Some(*id)),
        };
        inline
            .into_iter()
            .chain(group.into_iter().flat_map(move |id| self.group_endpoints(id).map(|(_, n)| n)))
    }

    pub fn group_by_name(&self, name: &str) -> Option<GroupId> {
        self.groups.iter().position(|(n, _)| n == name).map(|i| GroupId(i as u32))
    }
}

#[derive(Debug, Default)]
pub struct LoadReport {
    pub file: String,
    pub format: Option<Format>,
    pub version: Option<String>,
    /// Monitors seen in the file (valid or not).
    pub monitors_seen: usize,
    /// Monitors handed to the callback (valid ones).
    pub monitors_loaded: usize,
    /// Of those, how many JSON's direct decoder took (the rest took the general path).
    pub monitors_direct: usize,
    pub problems: Problems,
    pub registry: Registry,
    /// Distinct `codes` blocks after interning.
    pub distinct_codes: usize,
    pub distinct_headers: usize,
    /// The input could not be read to its end (a truncated or corrupt file, a `.gz` cut
    /// short): `cpra validate` and `cpra run` exit 2, as for a file that cannot be opened.
    pub unreadable: bool,
}

impl LoadReport {
    /// No errors (warnings allowed). Monitors handed on are only to be run when this holds:
    /// a reference checked at the end can still fail after monitors were handed on.
    pub fn is_valid(&self) -> bool {
        self.problems.errors == 0
    }
}

/// The file could not be opened or read at all (exit code 2 in `cpra validate`).
#[derive(Debug)]
pub struct LoadError {
    pub file: String,
    pub error: std::io::Error,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.file, self.error)
    }
}

impl std::error::Error for LoadError {}

/// Load a manifest file (YAML/JSON, optionally gzipped), handing each valid monitor to
/// `on_monitor` as soon as it is decoded.
pub fn load_path(
    path: &Path,
    opts: &LoadOptions,
    on_monitor: impl FnMut(Monitor),
) -> Result<LoadReport, LoadError> {
    let file = path.display().to_string();
    let (reader, format) = open_counting(path, opts.read_bytes.clone())
        .map_err(|error| LoadError { file: file.clone(), error })?;
    // The YAML fast path re-reads the file from its start if it falls back to saphyr.
    let owned = path.to_path_buf();
    let reopen: Reopen = Box::new(move || open(&owned).map(|(r, _)| r));
    Ok(load_source(reader, format, Some(reopen), &file, opts, on_monitor))
}

/// Load from any reader (decompressing if gzipped; `format` sniffed if `None`).
pub fn load_bytes(
    bytes: Vec<u8>,
    format: Option<Format>,
    file: &str,
    opts: &LoadOptions,
    on_monitor: impl FnMut(Monitor),
) -> LoadReport {
    let bytes: std::sync::Arc<[u8]> = bytes.into();
    let again = std::sync::Arc::clone(&bytes);
    let reopen: Reopen = Box::new(move || {
        open_reader(Box::new(std::io::Cursor::new(std::sync::Arc::clone(&again))), None)
            .map(|(r, _)| r)
    });
    match open_reader(Box::new(std::io::Cursor::new(bytes)), format) {
        Ok((reader, format)) => load_source(reader, format, Some(reopen), file, opts, on_monitor),
        Err(e) => {
            let mut report =
                LoadReport { file: file.to_string(), unreadable: true, ..Default::default() };
            report.problems.push(Diagnostic {
                level: Level::Error,
                class: Class::Unreadable,
                file: file.to_string(),
                pos: Pos { line: 1, column: 1 },
                monitor: None,
                path: String::new(),
                message: format!("cannot decode input: {e}"),
                hint: "is the gzip stream complete?".into(),
            });
            report
        }
    }
}

pub fn load_reader(
    reader: Box<dyn Read>,
    format: Format,
    file: &str,
    opts: &LoadOptions,
    on_monitor: impl FnMut(Monitor),
) -> LoadReport {
    load_source(reader, format, None, file, opts, on_monitor)
}

/// `load_reader`, with a way to read the input again from its start (for the YAML fast
/// path's saphyr fallback); without it YAML is read by saphyr alone.
fn load_source(
    reader: Box<dyn Read>,
    format: Format,
    reopen: Option<Reopen>,
    file: &str,
    opts: &LoadOptions,
    on_monitor: impl FnMut(Monitor),
) -> LoadReport {
    let src: Box<dyn EventSource> = match format {
        Format::Json => Box::new(JsonReader::new(reader)),
        Format::Yaml => yaml_source(reader, reopen),
    };
    load_events(src, format, file, opts, on_monitor)
}

/// The loader over any event source (tests give JSON readers with tiny buffers).
pub(crate) fn load_events(
    mut src: Box<dyn EventSource>,
    format: Format,
    file: &str,
    opts: &LoadOptions,
    on_monitor: impl FnMut(Monitor),
) -> LoadReport {
    let mut loader = Loader {
        file,
        opts,
        report: LoadReport { file: file.to_string(), format: Some(format), ..Default::default() },
        interners: Interners::default(),
        groups: GroupNames::default(),
        anchors: Anchors::default(),
        ids: HashMap::default(),
        endpoints: None,
        group_defs: None,
        arena: Arena::default(),
        direct: (format == Format::Json && opts.direct_json).then(DirectDecoder::default),
    };
    match loader.run(src.as_mut(), on_monitor) {
        Ok(()) => loader.after_the_document(src.as_mut(), format),
        Err(e) => loader.syntax(e),
    }
    loader.finish()
}

struct Loader<'a> {
    file: &'a str,
    opts: &'a LoadOptions<'a>,
    report: LoadReport,
    interners: Interners,
    groups: GroupNames,
    anchors: Anchors,
    /// id hash -> line of the first monitor with it. Keeping hashes, not ids, bounds memory to
    /// 12 bytes per monitor; a 64-bit collision between two different ids in a fleet of a
    /// million has a probability near 3e-8, and would be reported as a duplicate id.
    ids: HashMap<u64, u32, super::intern::FxBuildHasher>,
    endpoints: Option<Tree>,
    group_defs: Option<Tree>,
    /// One monitor's tree at a time, its storage reused.
    arena: Arena,
    /// JSON's direct decoder (`None`: every monitor takes the general path).
    direct: Option<DirectDecoder>,
}

impl Loader<'_> {
    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            file: self.file,
            monitor: None,
            problems: &mut self.report.problems,
            lenient: self.opts.lenient,
            env: self.opts.env,
            had_error: false,
            interners: &mut self.interners,
            groups: &mut self.groups,
            expanded: Vec::new(),
        }
    }

    /// A manifest is one document: anything after it (a second YAML document, more JSON) is
    /// an error, not silently dropped.
    fn after_the_document(&mut self, src: &mut dyn EventSource, format: Format) {
        let (pos, message) = match (src.next_event(), format) {
            (Ok((ParseEvent::End, _)), _) => return,
            (Ok((_, pos)), Format::Yaml) => {
                (pos, "a second YAML document starts here; a manifest is one document".into())
            }
            // The JSON reader reports what follows its document itself (the `Err` below).
            (Ok((_, pos)), Format::Json) => {
                (pos, "more data after the end of the JSON document".into())
            }
            (Err(e), _) => (e.pos, e.message),
        };
        let hint = match format {
            Format::Yaml => {
                "merge its monitors into the first document's `monitors:` list, or load it as \
                 its own file"
            }
            Format::Json => {
                "a manifest is one JSON document: merge the monitors into the first one's \
                 `monitors` list"
            }
        };
        self.push_top(Class::Syntax, pos, message, hint);
    }

    fn push_top(&mut self, class: Class, pos: Pos, message: String, hint: &str) {
        self.report.problems.push(Diagnostic {
            level: Level::Error,
            class,
            file: self.file.to_string(),
            pos,
            monitor: None,
            path: String::new(),
            message,
            hint: hint.to_string(),
        });
    }

    fn syntax(&mut self, e: SyntaxError) {
        let unreadable = e.message.starts_with(READ_FAILED);
        self.report.unreadable |= unreadable;
        let (class, hint) = if unreadable {
            (
                Class::Unreadable,
                "the file is cut short or corrupt (a truncated .gz?); nothing after it was read",
            )
        } else {
            (Class::Syntax, "fix the syntax here; nothing after it was read")
        };
        self.report.problems.push(Diagnostic {
            level: Level::Error,
            class,
            file: self.file.to_string(),
            pos: e.pos,
            monitor: None,
            path: String::new(),
            message: e.message,
            hint: hint.into(),
        });
    }

    fn run(
        &mut self,
        src: &mut dyn EventSource,
        mut on_monitor: impl FnMut(Monitor),
    ) -> Result<(), SyntaxError> {
        let (first, pos) = src.next_event()?;
        match first {
            ParseEvent::MapStart { .. } => {}
            // Go CPRA also accepted a bare list of monitors.
            ParseEvent::SeqStart { .. } => return self.monitors(src, &mut on_monitor),
            ParseEvent::End => {
                self.top_error(pos, "the manifest is empty", "start with `monitors:`");
                return Ok(());
            }
            _ => {
                self.top_error(
                    pos,
                    "the top level must be a mapping with `monitors:`",
                    "start with `monitors:`",
                );
                return Ok(());
            }
        }
        let mut seen_monitors = false;
        // Top-level keys read so far, with where: a key given twice is an error (a second
        // `monitors:` would otherwise add to or replace the first, unseen).
        let mut seen: Vec<(String, Pos)> = Vec::new();
        loop {
            let (ev, pos) = src.next_event()?;
            let key = match ev {
                ParseEvent::MapEnd => break,
                ParseEvent::Scalar { .. } => src.scalar().to_owned(),
                _ => {
                    return Err(SyntaxError {
                        pos,
                        message: "mapping keys must be plain strings".into(),
                    })
                }
            };
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                let message = format!(
                    "top-level field '{key}' is given twice (first at line {}, column {})",
                    first.line, first.column
                );
                let hint = if key == "monitors" {
                    "keep one `monitors:` list and move the monitors of the other into it"
                } else {
                    "keep one of them"
                };
                self.push_top(Class::DuplicateKey, pos, message, hint);
            } else if seen.len() < TOP_FIELDS.len() + MAX_UNKNOWN_TOP_KEYS {
                seen.push((key.clone(), pos));
            }
            match key.as_str() {
                "monitors" => {
                    seen_monitors = true;
                    let (ev, vpos) = src.next_event()?;
                    match ev {
                        ParseEvent::SeqStart { .. } => self.monitors(src, &mut on_monitor)?,
                        other => {
                            let tree = build(src, (other, vpos), &mut self.anchors)?;
                            self.ctx().duplicate_keys(&tree);
                            let node = tree.root();
                            if !node.is_null() {
                                self.top_error(
                                    vpos,
                                    &format!(
                                        "'monitors' must be a list, found {}",
                                        node.type_name()
                                    ),
                                    "write `monitors:` then `- name: ...` items",
                                );
                            }
                        }
                    }
                }
                "endpoints" | "notification_groups" | "version" => {
                    let first = src.next_event()?;
                    let tree = build(src, first, &mut self.anchors)?;
                    self.named_twice(&tree, &key);
                    match key.as_str() {
                        "endpoints" => self.endpoints = Some(tree),
                        "notification_groups" => self.group_defs = Some(tree),
                        _ => self.report.version = tree.root().scalar().map(str::to_string),
                    }
                }
                other => {
                    let (level, class, message, hint) = if other.starts_with("x-") {
                        // Go CPRA ignores unknown keys, and its manifests keep YAML anchors
                        // under `x-` keys (as Compose files do).
                        let hint = "an `x-` key only holds YAML anchors for the monitors to \
                                    merge; CPRA (like the Go CPRA) does not read it";
                        (Level::Warning, Class::IgnoredField, "is ignored", hint.to_string())
                    } else {
                        let (level, hint) =
                            unknown_field_hint(other, TOP_FIELDS, self.opts.lenient);
                        (level, Class::UnknownField, "is unknown", hint)
                    };
                    self.report.problems.push(Diagnostic {
                        level,
                        class,
                        file: self.file.to_string(),
                        pos,
                        monitor: None,
                        path: other.to_string(),
                        message: format!("top-level field '{other}' {message}"),
                        hint,
                    });
                    let first = src.next_event()?;
                    let tree = build(src, first, &mut self.anchors)?;
                    self.ctx().duplicate_keys(&tree);
                }
            }
        }
        if !seen_monitors {
            self.top_error(pos, "no 'monitors' list", "add `monitors:` with at least one monitor");
        }
        Ok(())
    }

    /// Reports the keys given twice in the tree of the top-level field `field`: a name
    /// defined twice under `endpoints` or `notification_groups` says so (the second would
    /// otherwise replace the first, unseen); any other as a key given twice.
    fn named_twice(&mut self, tree: &Tree, field: &str) {
        let what = match field {
            "endpoints" => "endpoint",
            "notification_groups" => "notification group",
            _ => return self.ctx().duplicate_keys(tree),
        };
        let root = tree.root().entries();
        for d in tree.duplicate_keys() {
            let top = root.is_some_and(|e| e.iter().any(|e| e.key_pos == d.pos));
            let (message, path) = if top {
                (format!("{what} '{}' is defined twice", d.key), format!("{field}.{}", d.key))
            } else {
                (format!("key '{}' is given twice in one mapping", d.key), String::new())
            };
            let message =
                format!("{message} (first at line {}, column {})", d.first.line, d.first.column);
            let hint = if top { "give each its own name, or keep one" } else { "keep one of them" };
            self.report.problems.push(Diagnostic {
                level: Level::Error,
                class: Class::DuplicateKey,
                file: self.file.to_string(),
                pos: d.pos,
                monitor: None,
                path,
                message,
                hint: hint.to_string(),
            });
        }
    }

    fn top_error(&mut self, pos: Pos, message: &str, hint: &str) {
        self.report.problems.push(Diagnostic {
            level: Level::Error,
            class: Class::Missing,
            file: self.file.to_string(),
            pos,
            monitor: None,
            path: String::new(),
            message: message.to_string(),
            hint: hint.to_string(),
        });
    }

    /// The items of `monitors`, one at a time (the `SeqStart` has been read).
    fn monitors(
        &mut self,
        src: &mut dyn EventSource,
        on_monitor: &mut impl FnMut(Monitor),
    ) -> Result<(), SyntaxError> {
        // Out of `self` while a tree borrows it, so the decoder can borrow the rest.
        let mut arena = std::mem::take(&mut self.arena);
        let result = self.monitor_items(src, on_monitor, &mut arena);
        self.arena = arena;
        result
    }

    fn monitor_items(
        &mut self,
        src: &mut dyn EventSource,
        on_monitor: &mut impl FnMut(Monitor),
        arena: &mut Arena,
    ) -> Result<(), SyntaxError> {
        let mut misses = Vec::new();
        loop {
            if self.direct.is_some() && self.direct_item(src, on_monitor, &mut misses)? {
                continue;
            }
            let (ev, pos) = src.next_event()?;
            if ev == ParseEvent::SeqEnd {
                return Ok(());
            }
            let node = arena.build(src, (ev, pos), &mut self.anchors)?;
            let index = self.report.monitors_seen;
            self.report.monitors_seen += 1;
            let problems_before = self.report.problems.total();
            let mut ctx = self.ctx();
            let decoded = decode_monitor(&mut ctx, &node, index);
            let id = match &decoded {
                Ok(m) => m.id.as_str(),
                Err(Some(id)) => id.as_str(),
                Err(None) => continue,
            };
            let hash = super::schema::id_hash(id);
            if let Some(&first_line) = self.ids.get(&hash) {
                let pos = node
                    .get("id")
                    .map(|e| e.value.pos)
                    .or(node.get("name").map(|e| e.value.pos))
                    .unwrap_or(node.pos);
                let name =
                    node.get("name").and_then(|e| e.value.scalar()).unwrap_or(id).to_string();
                self.report.problems.push(Diagnostic {
                    level: Level::Error,
                    class: Class::DuplicateId,
                    file: self.file.to_string(),
                    pos,
                    monitor: Some(name),
                    path: format!("monitors[{index}].id"),
                    message: format!(
                        "duplicate id '{id}' (first used by the monitor at line {first_line})"
                    ),
                    hint: "give each monitor a unique `id` (or a unique `name`)".into(),
                });
                continue;
            }
            self.ids.insert(hash, node.pos.line);
            let Ok(monitor) = decoded else { continue };
            if !misses.is_empty() && self.report.problems.total() == problems_before {
                if let Some(direct) = &mut self.direct {
                    direct.fill(std::mem::take(&mut misses), &monitor);
                }
            }
            self.report.monitors_loaded += 1;
            on_monitor(monitor);
        }
    }

    /// Tries the next monitor on the direct decoder: true when it was loaded that way; false
    /// when it is for the general path (with the cached blocks it missed in `misses`), or the
    /// list has ended.
    fn direct_item(
        &mut self,
        src: &mut dyn EventSource,
        on_monitor: &mut impl FnMut(Monitor),
        misses: &mut Vec<Miss>,
    ) -> Result<bool, SyntaxError> {
        misses.clear();
        let Some(direct) = &mut self.direct else { return Ok(false) };
        loop {
            let Some(item) = src.raw_item()? else { return Ok(false) };
            match direct.decode(item.bytes, item.eof, item.pos.line, &mut self.interners) {
                Step::Done(monitor, n) => {
                    let hash = super::schema::id_hash(&monitor.id);
                    if self.ids.contains_key(&hash) {
                        // The general path reports the duplicate, with its positions.
                        return Ok(false);
                    }
                    self.ids.insert(hash, item.pos.line);
                    src.raw_consume(n);
                    self.report.monitors_seen += 1;
                    self.report.monitors_loaded += 1;
                    self.report.monitors_direct += 1;
                    on_monitor(monitor);
                    return Ok(true);
                }
                Step::NeedMore => {
                    if !src.raw_more()? {
                        return Ok(false);
                    }
                }
                Step::Bail => {
                    *misses = direct.misses(item.bytes);
                    return Ok(false);
                }
            }
        }
    }

    /// Decode `endpoints` and `notification_groups`, and check every reference.
    fn finish(mut self) -> LoadReport {
        let mut endpoint_index: HashMap<String, usize> = HashMap::new();
        let mut endpoints: Vec<(String, Arc<Notify>)> = Vec::new();
        if let Some(tree) = self.endpoints.take() {
            let node = tree.root();
            let mut ctx = self.ctx();
            if let NodeKind::Map(entries) = node.kind {
                for e in entries.iter() {
                    ctx.monitor = None;
                    let top = FieldPath::Top("endpoints");
                    let path = FieldPath::Key(&top, e.key);
                    let Some(f) = ctx.fields(&e.value, path, ENDPOINT_FIELDS) else { continue };
                    if let Some(n) = decode_notify(&mut ctx, &f, "type") {
                        endpoint_index.insert(e.key.to_string(), endpoints.len());
                        endpoints.push((e.key.to_string(), n));
                    } else {
                        // Remember the name so groups naming it are not also reported.
                        endpoint_index.insert(e.key.to_string(), usize::MAX);
                    }
                }
            } else if !node.is_null() {
                ctx.error(
                    Class::WrongType,
                    node.pos,
                    "endpoints".into(),
                    format!("expected a mapping of endpoint names, found {}", node.type_name()),
                    "write `endpoints: {oncall-hook: {type: webhook, config: {url: ...}}}`",
                );
            }
        }
        self.report.registry.endpoints = endpoints;
        // Sorted: hints list these, and a message must not change between runs.
        let mut known_endpoints: Vec<String> = endpoint_index.keys().cloned().collect();
        known_endpoints.sort();
        let mut defined: HashMap<String, Vec<usize>> = HashMap::new();
        if let Some(tree) = self.group_defs.take() {
            let node = tree.root();
            let mut ctx = self.ctx();
            if let NodeKind::Map(entries) = node.kind {
                for e in entries.iter() {
                    let mut members = Vec::new();
                    let items: Vec<Node> = match e.value.kind {
                        NodeKind::Seq(items) => items.iter().collect(),
                        NodeKind::Scalar { .. } if !e.value.is_null() => vec![e.value],
                        _ => {
                            ctx.error(
                                Class::WrongType,
                                e.value.pos,
                                format!("notification_groups.{}", e.key),
                                format!(
                                    "expected a list of endpoint names, found {}",
                                    e.value.type_name()
                                ),
                                "write `oncall: [pagerduty-main, slack-ops]`",
                            );
                            Vec::new()
                        }
                    };
                    // Names listed so far: one listed twice would be sent each alert twice.
                    let mut listed: HashMap<&str, Pos> = HashMap::new();
                    for (i, item) in items.into_iter().enumerate() {
                        let path = format!("notification_groups.{}[{i}]", e.key);
                        let Some(name) = item.scalar() else {
                            ctx.error(
                                Class::WrongType,
                                item.pos,
                                path,
                                "expected an endpoint name".into(),
                                "write the endpoint's name",
                            );
                            continue;
                        };
                        if let Some(first) = listed.get(name) {
                            ctx.error(
                                Class::DuplicateKey,
                                item.pos,
                                path,
                                format!(
                                    "endpoint '{name}' is listed twice in group '{}' (first at \
                                     line {}, column {})",
                                    e.key, first.line, first.column
                                ),
                                "list each endpoint once",
                            );
                            continue;
                        }
                        listed.insert(name, item.pos);
                        match endpoint_index.get(name) {
                            Some(&usize::MAX) => {}
                            Some(&idx) => members.push(idx),
                            None => {
                                let refs: Vec<&str> =
                                    known_endpoints.iter().map(String::as_str).collect();
                                let hint = if refs.is_empty() {
                                    "define it under `endpoints:`".to_string()
                                } else {
                                    format!(
                                        "define it under `endpoints:`; {}",
                                        choices_hint(name, &refs)
                                    )
                                };
                                ctx.error(
                                    Class::UnknownReference,
                                    item.pos,
                                    path,
                                    format!("endpoint '{name}' does not exist"),
                                    hint,
                                );
                            }
                        }
                    }
                    defined.insert(e.key.to_string(), members);
                }
            } else if !node.is_null() {
                ctx.error(
                    Class::WrongType,
                    node.pos,
                    "notification_groups".into(),
                    format!("expected a mapping of group names, found {}", node.type_name()),
                    "write `notification_groups: {oncall: [pagerduty-main]}`",
                );
            }
        }
        let mut defined_names: Vec<String> = defined.keys().cloned().collect();
        defined_names.sort();
        let refs: Vec<&str> = defined_names.iter().map(String::as_str).collect();
        let mut groups = Vec::with_capacity(self.groups.names.len());
        for (i, name) in self.groups.names.iter().enumerate() {
            match defined.remove(name) {
                Some(members) => groups.push((name.clone(), members)),
                None => {
                    let site = &self.groups.first_ref[i];
                    let hint = if refs.is_empty() {
                        "define it under `notification_groups:`".to_string()
                    } else {
                        format!(
                            "define it under `notification_groups:`; {}",
                            choices_hint(name, &refs)
                        )
                    };
                    self.report.problems.push(Diagnostic {
                        level: Level::Error,
                        class: Class::UnknownReference,
                        file: self.file.to_string(),
                        pos: site.pos,
                        monitor: site.monitor.clone(),
                        path: site.path.clone(),
                        message: format!("notify_group '{name}' does not exist"),
                        hint,
                    });
                    groups.push((name.clone(), Vec::new()));
                }
            }
        }
        // Groups no monitor named, in a stable order.
        let mut rest: Vec<(String, Vec<usize>)> = defined.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        groups.extend(rest);
        self.report.registry.groups = groups;
        self.report.distinct_codes = self.interners.codes.len();
        self.report.distinct_headers = self.interners.headers.len();
        self.report
    }
}

/// Convenience for tests and tools: load a whole string, keeping every monitor.
pub fn load_str(
    text: &str,
    format: Option<Format>,
    opts: &LoadOptions,
) -> (Vec<Monitor>, LoadReport) {
    let mut monitors = Vec::new();
    let report =
        load_bytes(text.as_bytes().to_vec(), format, "<input>", opts, |m| monitors.push(m));
    (monitors, report)
}
