//! Decodes one JSON monitor straight from its bytes: the way nearly every monitor of a big
//! fleet is written (known fields, plain strings, whole numbers), in one pass, with no events
//! and no tree.
//!
//! What it is not: a second decoder with rules of its own. It stops ([`Step::Bail`]) at
//! anything the general path (events, tree, [`super::decode`]) would say a word about: an
//! unknown or repeated field, a `null`, an escape or a `$` in a string, a number where a
//! string goes (or the reverse), a value out of range, a value the engine would refuse (the
//! predicates of [`super::check`], shared with the general path: URL, interval and timeout
//! bounds, method, `body_contains`, `ca_file`, dns `server`), a warning (timeout over
//! interval), a duplicate id. The loader then decodes that monitor through the general path, which reports
//! it. So every diagnostic comes from one place, and a monitor decoded here is the monitor the
//! general path builds from the same bytes; the `direct_and_general_paths_agree_*` tests hold
//! the two to that over generated and mutated manifests.
//!
//! Blocks a fleet repeats (`codes`, `headers`, `intervention`, `maintenance`) are not decoded
//! here: their bytes are looked up in caches filled from monitors the general path decoded
//! without a problem (same bytes, same value, since decoding a block depends only on its text
//! and the environment, both fixed for a load). A monitor with a block not yet cached takes
//! the general path once and fills the cache. Small values the runtime keeps interned
//! (`tags`, `groups`, `expected_status`, `method`) are parsed here, and also found by their
//! bytes the next time.
//!
//! Why by hand: serde_json would need the whole item copied out of the stream first, gives no
//! way to stop at the general path's first objection, and typed derives would duplicate the
//! schema's defaults and checks in attributes. This runs on every monitor of a million-monitor
//! load: it is the load's hot path.
//!
//! Measured, not assumed (issue 11; `docs/benchmarks/load.md`, "Typed serde against the direct
//! decoder"): serde_json into `#[derive(Deserialize)]` structs mirroring a monitor, streamed
//! and kept the same way and doing none of the loader's checks, took 28,056 instructions a
//! monitor against this decoder's 7,188 (3.9x), and 1.6x-6.8x its CPU time over fourteen runs of
//! `cpra-bench load --formats json,json-serde` (the rule was: replace this if within 1.3x).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::check;
use super::decode::Interners;
use super::duration::parse_go_duration;
use super::intern::FxBuildHasher;
use super::json::swar::{bytes_equal, string_stops, word_at};
use super::maintenance::MaintenanceWindow;
use super::schema::*;
use crate::limits::{MAX_CACHED_BLOCKS, MAX_CACHED_BLOCK_BYTES, MAX_LIST_ITEMS, MAX_SKIP_DEPTH};

/// What one attempt at a monitor came to.
// Not boxed: a `Step` is moved once, to the caller, and a box would be one more allocation
// per monitor.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// The monitor, and how many bytes of the input it took (its closing `}` included).
    Done(Monitor, usize),
    /// The input ended inside the monitor and more can be read: try again with more.
    NeedMore,
    /// Take the general path for this monitor.
    Bail,
}

/// The cached block kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    Codes,
    Headers,
    Intervention,
    Maintenance,
}

/// A block the last attempt did not find in its cache, with its bytes: after the general path
/// decodes the monitor without a problem, [`DirectDecoder::fill`] caches it.
pub type Miss = (Block, Box<[u8]>);

/// Blocks most recently found, per kind, compared at the cursor before a block is skipped and
/// hashed: a fleet repeats a few blocks, and a compare of the bytes in place is cheaper.
const RECENT_BLOCKS: usize = 4;

/// Decoded blocks by their bytes.
struct Cache<T> {
    by_bytes: HashMap<Box<[u8]>, T, FxBuildHasher>,
    /// Copies of up to `RECENT_BLOCKS` entries of `by_bytes`, most recent last.
    recent: Vec<(Box<[u8]>, T)>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache { by_bytes: HashMap::default(), recent: Vec::with_capacity(RECENT_BLOCKS) }
    }
}

impl<T: Clone> Cache<T> {
    fn insert(&mut self, bytes: Box<[u8]>, value: T) {
        if self.by_bytes.len() < MAX_CACHED_BLOCKS && bytes.len() <= MAX_CACHED_BLOCK_BYTES {
            self.by_bytes.insert(bytes, value);
        }
    }

    /// The value of the block at the cursor (which moves past it), or its span on a miss.
    fn find(&mut self, c: &mut Cursor) -> R<Result<T, Range<usize>>> {
        c.ws()?;
        let rest = &c.b[c.p..];
        // The bytes of a cached block are one complete JSON value, so the same bytes here are
        // that value; whatever follows is checked by the caller as usual.
        if let Some((bytes, v)) = self.recent.iter().rev().find(|(b, _)| rest.starts_with(b)) {
            c.p += bytes.len();
            return Ok(Ok(v.clone()));
        }
        let span = c.skip()?;
        match self.by_bytes.get_key_value(&c.b[span.clone()]) {
            Some((bytes, v)) => {
                if self.recent.len() == RECENT_BLOCKS {
                    self.recent.remove(0);
                }
                self.recent.push((bytes.clone(), v.clone()));
                Ok(Ok(v.clone()))
            }
            None => Ok(Err(span)),
        }
    }
}

/// Per-load state: the block caches.
#[derive(Default)]
pub struct DirectDecoder {
    codes: Cache<Arc<Codes>>,
    headers: Cache<Arc<Headers>>,
    interventions: Cache<Box<Intervention>>,
    maintenance: Cache<Box<[MaintenanceWindow]>>,
    /// The interned values of an absent block (the general path interns them too).
    no_codes: Option<Arc<Codes>>,
    no_headers: Option<Arc<Headers>>,
    /// Blocks the current attempt missed, as ranges of its input.
    misses: Vec<(Block, Range<usize>)>,
    /// Lists are gathered here, then copied out at their length.
    strings: Vec<String>,
    statuses: Vec<u16>,
    /// Small interned values (`tags` and `groups` lists, `expected_status`, `method`) by
    /// their bytes: parsed here on a miss (no general path needed), then a compare.
    lists: Cache<Arc<Vec<String>>>,
    status_lists: Cache<Arc<Vec<u16>>>,
    methods: Cache<Arc<String>>,
    /// The interned values of absent ones.
    no_list: Option<Arc<Vec<String>>>,
    no_statuses: Option<Arc<Vec<u16>>>,
    get: Option<Arc<String>>,
}

impl DirectDecoder {
    /// Decode the monitor at the start of `bytes` (its first byte is `{`). `eof`: nothing
    /// follows `bytes` in the input. `line`: the line of its first byte.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        eof: bool,
        line: u32,
        interners: &mut Interners,
    ) -> Step {
        self.misses.clear();
        let mut c = Cursor { b: bytes, p: 0 };
        match monitor(&mut c, line, self, interners) {
            Ok(m) if self.misses.is_empty() => Step::Done(m, c.p),
            Ok(_) => Step::Bail,
            Err(Stop::More) if !eof => Step::NeedMore,
            Err(_) => Step::Bail,
        }
    }

    /// The blocks the last [`Self::decode`] (of `bytes`) missed, copied out.
    pub fn misses(&self, bytes: &[u8]) -> Vec<Miss> {
        self.misses.iter().map(|(k, r)| (*k, bytes[r.clone()].into())).collect()
    }

    /// Cache the blocks of `monitor`, decoded by the general path without a problem.
    pub fn fill(&mut self, misses: Vec<Miss>, monitor: &Monitor) {
        for (kind, bytes) in misses {
            match kind {
                Block::Codes => self.codes.insert(bytes, Arc::clone(&monitor.codes)),
                Block::Headers => {
                    if let Pulse::Http(h) = &monitor.pulse_check.pulse {
                        self.headers.insert(bytes, Arc::clone(&h.headers));
                    }
                }
                Block::Intervention => {
                    if let Some(i) = &monitor.intervention {
                        self.interventions.insert(bytes, i.clone());
                    }
                }
                Block::Maintenance => self.maintenance.insert(bytes, monitor.maintenance.clone()),
            }
        }
    }

    /// A cached block's value; `None` on a miss, which is recorded (the attempt then ends in
    /// `Bail`, and the block is cached once the general path has decoded it).
    fn cached<T: Clone>(
        misses: &mut Vec<(Block, Range<usize>)>,
        cache: &mut Cache<T>,
        kind: Block,
        c: &mut Cursor,
    ) -> R<Option<T>> {
        match cache.find(c)? {
            Ok(v) => Ok(Some(v)),
            Err(span)
                if cache.by_bytes.len() < MAX_CACHED_BLOCKS
                    && span.len() <= MAX_CACHED_BLOCK_BYTES =>
            {
                misses.push((kind, span));
                Ok(None)
            }
            Err(_) => Err(Stop::Bail),
        }
    }
}

/// Why an attempt stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The input ended first.
    More,
    /// Something for the general path.
    Bail,
}

type R<T> = Result<T, Stop>;

fn bail<T>() -> R<T> {
    Err(Stop::Bail)
}

struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    /// Skips whitespace; the next byte (not consumed).
    #[inline]
    fn ws(&mut self) -> R<u8> {
        while let Some(&c) = self.b.get(self.p) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Ok(c);
            }
            self.p += 1;
        }
        Err(Stop::More)
    }

    #[inline]
    fn eat(&mut self, want: u8) -> R<()> {
        if self.ws()? == want {
            self.p += 1;
            Ok(())
        } else {
            bail()
        }
    }

    /// A string's text between its quotes, when it has no escape, no control character (the
    /// general path decodes escapes and reports control characters) and no `$` (which may
    /// start a `${NAME}` to expand; keys with one are unknown keys anyway). One scan, eight
    /// bytes at a time, then a UTF-8 check only if a byte past ASCII was seen.
    #[inline]
    fn str(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.p;
        let rest = &self.b[start..];
        let mut i = 0;
        let mut ascii = true;
        loop {
            i += plain_run(&rest[i..]);
            let Some(&c) = rest.get(i) else { return Err(Stop::More) };
            match c {
                b'"' => break,
                b'\\' | b'$' | 0..=0x1f => return bail(),
                _ => {
                    // Past ASCII: allowed, checked as UTF-8 below.
                    ascii = false;
                    i += 1;
                }
            }
        }
        self.p = start + i + 1;
        let text = &rest[..i];
        if ascii {
            // SAFETY: every byte of `text` is ASCII (checked just above), so it is UTF-8.
            Ok(unsafe { std::str::from_utf8_unchecked(text) })
        } else {
            std::str::from_utf8(text).map_err(|_| Stop::Bail)
        }
    }

    fn key(&mut self) -> R<&'a [u8]> {
        self.str().map(str::as_bytes)
    }

    fn string(&mut self) -> R<String> {
        self.str().map(str::to_owned)
    }

    /// A whole number written as one (`-?(0|[1-9][0-9]*)`), in `min..=max`.
    fn int(&mut self, min: i64, max: i64) -> R<i64> {
        self.ws()?;
        let start = self.p;
        let neg = self.b[start] == b'-';
        let digits_at = start + usize::from(neg);
        let digits =
            self.b.get(digits_at..).ok_or(Stop::More)?.iter().take_while(|c| c.is_ascii_digit());
        let n = digits.count();
        let end = digits_at + n;
        if end == self.b.len() {
            return Err(Stop::More);
        }
        if n == 0 || n > 18 || (n > 1 && self.b[digits_at] == b'0') {
            return bail();
        }
        let mut v: i64 = 0;
        for &d in &self.b[digits_at..end] {
            v = v * 10 + i64::from(d - b'0');
        }
        if neg {
            v = -v;
        }
        self.p = end;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            bail()
        }
    }

    fn bool(&mut self) -> R<bool> {
        let c = self.ws()?;
        let (word, v): (&[u8], bool) = match c {
            b't' => (b"true", true),
            b'f' => (b"false", false),
            _ => return bail(),
        };
        let rest = &self.b[self.p..];
        if rest.len() < word.len() {
            return if word.starts_with(rest) { Err(Stop::More) } else { bail() };
        }
        if &rest[..word.len()] != word {
            return bail();
        }
        self.p += word.len();
        Ok(v)
    }

    /// A Go duration string, in whole milliseconds, at least 1.
    fn duration_ms(&mut self) -> R<u64> {
        let text = self.str()?;
        match parse_go_duration(text) {
            Ok(ns) if ns / 1_000_000 > 0 => Ok(ns / 1_000_000),
            _ => bail(),
        }
    }

    /// A string, or a list of strings. Gathered in `scratch` first, so the list kept has
    /// its exact length (as the general path's), not a grown capacity.
    fn str_list(&mut self, scratch: &mut Vec<String>) -> R<Vec<String>> {
        match self.ws()? {
            b'"' => Ok(vec![self.string()?]),
            b'[' => {
                self.p += 1;
                scratch.clear();
                let mut first = true;
                while self.next_item(&mut first)? {
                    if scratch.len() == MAX_LIST_ITEMS {
                        return bail();
                    }
                    scratch.push(self.string()?);
                }
                Ok(exact(scratch))
            }
            _ => bail(),
        }
    }

    /// Opens an object.
    fn open(&mut self) -> R<()> {
        self.eat(b'{')
    }

    /// The next key of an open object and its `:`, or `None` at its `}`.
    #[inline]
    fn next_key(&mut self, first: &mut bool) -> R<Option<&'a [u8]>> {
        let c = self.ws()?;
        if c == b'}' && *first {
            self.p += 1;
            return Ok(None);
        }
        if !*first {
            match c {
                b',' => self.p += 1,
                b'}' => {
                    self.p += 1;
                    return Ok(None);
                }
                _ => return bail(),
            }
        }
        *first = false;
        let k = self.key()?;
        self.eat(b':')?;
        Ok(Some(k))
    }

    /// Whether an open array (its `[` consumed) has another item; consumes the `,` or `]`.
    fn next_item(&mut self, first: &mut bool) -> R<bool> {
        let c = self.ws()?;
        if c == b']' {
            self.p += 1;
            return Ok(false);
        }
        if !*first {
            if c != b',' {
                return bail();
            }
            self.p += 1;
        }
        *first = false;
        Ok(true)
    }

    /// Skips one value; its span. Well-formed JSON gets its exact span; anything else gets a
    /// span that no cache holds (only well-formed blocks are cached) or a `Bail`.
    fn skip(&mut self) -> R<Range<usize>> {
        self.ws()?;
        let start = self.p;
        let mut depth = 0usize;
        let mut i = start;
        let b = self.b;
        loop {
            let Some(&c) = b.get(i) else { return Err(Stop::More) };
            match c {
                b'"' => {
                    i += 1;
                    loop {
                        i += quote_or_escape_run(b.get(i..).unwrap_or_default());
                        match b.get(i) {
                            None => return Err(Stop::More),
                            Some(b'"') => break,
                            Some(b'\\') => i += 2,
                            Some(_) => i += 1,
                        }
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_SKIP_DEPTH {
                        return bail();
                    }
                    i += 1;
                }
                b'}' | b']' => {
                    if depth == 0 {
                        return bail();
                    }
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ if depth > 0 => i += 1,
                // A number or literal at the top: its word.
                _ => {
                    let n = b[i..]
                        .iter()
                        .position(|&c| {
                            !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                        })
                        .ok_or(Stop::More)?;
                    if n == 0 {
                        return bail();
                    }
                    i += n;
                    break;
                }
            }
        }
        self.p = i;
        Ok(start..i)
    }
}

/// How many leading bytes of `b` are plain string bytes: not `"`, `\\`, `$`, a control
/// character or past ASCII. Eight bytes at a time, the first special byte found from its word's
/// mask (strings are most of a manifest's bytes, and most are shorter than a word: the word
/// that holds the closing quote is usually the first).
#[inline(always)]
fn plain_run(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(w) = word_at(b, i) {
        let special = string_stops(w) | bytes_equal(w, b'$');
        if special != 0 {
            // The lowest flagged byte is exact (a false flag can only follow a true one).
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + b[i..]
        .iter()
        .position(|&c| matches!(c, b'"' | b'\\' | b'$' | 0..=0x1f | 0x80..))
        .unwrap_or(b.len() - i)
}

/// As [`plain_run`], stopping only at `"` and `\\` (skipping a block accepts any other byte).
#[inline(always)]
fn quote_or_escape_run(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(w) = word_at(b, i) {
        if bytes_equal(w, b'"') | bytes_equal(w, b'\\') != 0 {
            break;
        }
        i += 8;
    }
    i
}

/// A small interned value at the cursor: found by its bytes, or else parsed by `parse`
/// (which interns it) and remembered by its bytes.
fn interned<T: Clone>(
    cache: &mut Cache<T>,
    c: &mut Cursor,
    parse: impl FnOnce(&mut Cursor) -> R<T>,
) -> R<T> {
    match cache.find(c)? {
        Ok(v) => Ok(v),
        Err(span) => {
            let mut at = Cursor { b: c.b, p: span.start };
            let v = parse(&mut at)?;
            // What the skip took for one value must be what was parsed as one.
            if at.p != span.end {
                return bail();
            }
            cache.insert(c.b[span].into(), v.clone());
            Ok(v)
        }
    }
}

fn no_list(slot: &mut Option<Arc<Vec<String>>>, interners: &mut Interners) -> Arc<Vec<String>> {
    Arc::clone(slot.get_or_insert_with(|| interners.lists.intern(Vec::new())))
}

/// Moves `scratch`'s items to a list of their exact length, keeping `scratch`'s capacity for
/// the next list.
fn exact<T>(scratch: &mut Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(scratch.len());
    out.append(scratch);
    out
}

/// Marks field `bit` seen; a field given twice is for the general path (it reports it).
#[inline]
fn once(seen: &mut u32, bit: u32) -> R<()> {
    if *seen & (1 << bit) != 0 {
        return bail();
    }
    *seen |= 1 << bit;
    Ok(())
}

fn monitor(
    c: &mut Cursor,
    line: u32,
    d: &mut DirectDecoder,
    interners: &mut Interners,
) -> R<Monitor> {
    c.open()?;
    let mut seen = 0u32;
    let mut id: Option<&str> = None;
    let mut name: Option<&str> = None;
    let mut enabled = true;
    let mut tags = None;
    let mut pulse_check = None;
    let mut codes = None;
    let mut intervention = None;
    let mut maintenance = Box::default();
    let mut first = true;
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            b"id" => {
                once(&mut seen, 0)?;
                id = Some(c.str()?);
            }
            b"name" => {
                once(&mut seen, 1)?;
                name = Some(c.str()?);
            }
            b"enabled" => {
                once(&mut seen, 2)?;
                enabled = c.bool()?;
            }
            b"tags" => {
                once(&mut seen, 3)?;
                let strings = &mut d.strings;
                tags = Some(interned(&mut d.lists, c, |at| {
                    Ok(interners.lists.intern(at.str_list(strings)?))
                })?);
            }
            b"pulse_check" => {
                once(&mut seen, 4)?;
                pulse_check = Some(pulse_check_block(c, d, interners)?);
            }
            b"codes" => {
                once(&mut seen, 5)?;
                codes = DirectDecoder::cached(&mut d.misses, &mut d.codes, Block::Codes, c)?;
            }
            b"intervention" => {
                once(&mut seen, 6)?;
                intervention = DirectDecoder::cached(
                    &mut d.misses,
                    &mut d.interventions,
                    Block::Intervention,
                    c,
                )?;
            }
            b"maintenance" => {
                once(&mut seen, 7)?;
                maintenance = DirectDecoder::cached(
                    &mut d.misses,
                    &mut d.maintenance,
                    Block::Maintenance,
                    c,
                )?
                .unwrap_or_default();
            }
            _ => return bail(),
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or(Stop::Bail)?;
    let id = match id {
        Some(id) if is_valid_id(id) => id.to_owned(),
        Some(_) => return bail(),
        None => derive_id(name),
    };
    let pulse_check = pulse_check.ok_or(Stop::Bail)?;
    let codes = match codes {
        Some(codes) => codes,
        // A miss: the attempt ends in `Bail`.
        None if !d.misses.is_empty() => return bail(),
        // Absent (interned only then, as the general path does, so the count of distinct
        // blocks is the same on both paths).
        None => {
            Arc::clone(d.no_codes.get_or_insert_with(|| interners.codes.intern(Codes::default())))
        }
    };
    // No `${NAME}` here (a value with a `$` is left to the general path): only URL parts.
    let shown = Shown::of(&id, name, &pulse_check.pulse, intervention.as_deref(), &[]);
    Ok(Monitor {
        shown,
        id,
        name: name.to_owned(),
        enabled,
        tags: match tags {
            Some(t) => t,
            None => no_list(&mut d.no_list, interners),
        },
        pulse_check,
        codes,
        intervention,
        maintenance,
        line,
    })
}

fn pulse_check_block(
    c: &mut Cursor,
    d: &mut DirectDecoder,
    interners: &mut Interners,
) -> R<PulseCheck> {
    c.open()?;
    let mut seen = 0u32;
    let mut kind: Option<&'static str> = None;
    let mut interval_ms = None;
    let mut timeout_ms = None;
    let mut unhealthy_threshold = None;
    let mut healthy_threshold = None;
    let mut max_failures = None;
    let mut retries = None;
    let mut groups = None;
    // `config` may come before `type`: then it is read again once the type is known.
    let mut config_at = None;
    let mut pulse: Option<(Pulse, Option<u16>)> = None;
    let mut first = true;
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            b"type" => {
                once(&mut seen, 0)?;
                let text = c.str()?;
                kind = Some(
                    *PULSE_TYPES.iter().find(|t| t.eq_ignore_ascii_case(text)).ok_or(Stop::Bail)?,
                );
            }
            b"interval" => {
                once(&mut seen, 1)?;
                interval_ms = Some(c.duration_ms()?);
            }
            b"timeout" => {
                once(&mut seen, 2)?;
                timeout_ms = Some(c.duration_ms()?);
            }
            b"unhealthy_threshold" => {
                once(&mut seen, 3)?;
                unhealthy_threshold = Some(c.int(i64::MIN, i64::MAX)?);
            }
            b"healthy_threshold" => {
                once(&mut seen, 4)?;
                healthy_threshold = Some(c.int(i64::MIN, i64::MAX)?);
            }
            b"max_failures" => {
                once(&mut seen, 5)?;
                max_failures = Some(c.int(i64::MIN, i64::MAX)?);
            }
            b"retries" => {
                once(&mut seen, 6)?;
                retries = Some(retries_value(c)?);
            }
            b"groups" => {
                once(&mut seen, 7)?;
                let strings = &mut d.strings;
                groups = Some(interned(&mut d.lists, c, |at| {
                    Ok(interners.lists.intern(at.str_list(strings)?))
                })?);
            }
            b"config" => {
                once(&mut seen, 8)?;
                match kind {
                    Some(k) => pulse = Some(pulse_config(c, k, d, interners)?),
                    None => config_at = Some(c.skip()?),
                }
            }
            _ => return bail(),
        }
    }
    let kind = kind.ok_or(Stop::Bail)?;
    let (pulse, config_retries) = match (pulse, config_at) {
        (Some(p), _) => p,
        (None, Some(span)) => {
            let mut again = Cursor { b: c.b, p: span.start };
            let pulse = pulse_config(&mut again, kind, d, interners)?;
            // What the skip took for the value must be what was parsed as it.
            if again.p != span.end {
                return bail();
            }
            pulse
        }
        (None, None) => return bail(),
    };
    let interval_ms = interval_ms.unwrap_or(super::decode::DEFAULT_INTERVAL_MS);
    let timeout_ms = timeout_ms.unwrap_or(super::decode::DEFAULT_TIMEOUT_MS.min(interval_ms));
    if timeout_ms > interval_ms {
        // A warning in the general path.
        return bail();
    }
    if check::interval_ms(interval_ms).is_err() || check::timeout_ms(timeout_ms).is_err() {
        return bail();
    }
    Ok(PulseCheck {
        pulse,
        interval_ms,
        timeout_ms,
        unhealthy_threshold,
        healthy_threshold,
        max_failures,
        retries,
        config_retries,
        groups: match groups {
            Some(g) => g,
            None => no_list(&mut d.no_list, interners),
        },
    })
}

/// A required, non-empty string.
fn required(v: Option<String>) -> R<String> {
    v.filter(|s| !s.is_empty()).ok_or(Stop::Bail)
}

fn port(c: &mut Cursor) -> R<u16> {
    Ok(c.int(1, 65535)? as u16)
}

/// The next key of a pulse's `config` that is its type's own: `retries`, which every type
/// may give, is read here (and counted in `seen` as bit 31).
fn config_key<'a>(
    c: &mut Cursor<'a>,
    seen: &mut u32,
    first: &mut bool,
    retries: &mut Option<u16>,
) -> R<Option<&'a [u8]>> {
    loop {
        match c.next_key(first)? {
            Some(b"retries") => {
                once(seen, 31)?;
                *retries = Some(retries_value(c)?);
            }
            other => return Ok(other),
        }
    }
}

/// `retries`, here or in `config`: more than the engine makes is a warning in the general path.
fn retries_value(c: &mut Cursor) -> R<u16> {
    Ok(c.int(0, i64::from(crate::limits::MAX_RETRIES))? as u16)
}

/// A pulse's `config`: the pulse and its `retries`. `retries` is the same key in every type,
/// so it is read before the type's own keys (and counted in `seen` as bit 31).
fn pulse_config(
    c: &mut Cursor,
    kind: &str,
    d: &mut DirectDecoder,
    interners: &mut Interners,
) -> R<(Pulse, Option<u16>)> {
    c.open()?;
    let mut seen = 0u32;
    let mut first = true;
    let mut retries = None;
    let pulse = match kind {
        "http" => {
            let (mut url, mut method, mut headers, mut body) = (None, None, None, None);
            let mut expected_status = None;
            let mut insecure_skip_verify = false;
            let (mut body_contains, mut max_response_time_ms, mut ca_file) = (None, None, None);
            while let Some(key) = config_key(c, &mut seen, &mut first, &mut retries)? {
                match key {
                    b"url" => {
                        once(&mut seen, 0)?;
                        url = Some(c.string()?);
                    }
                    b"method" => {
                        once(&mut seen, 1)?;
                        method = Some(interned(&mut d.methods, c, |at| {
                            let m = at.str()?;
                            if check::method(m).is_err() {
                                return bail();
                            }
                            Ok(interners.methods.intern(m.to_ascii_uppercase()))
                        })?);
                    }
                    b"headers" => {
                        once(&mut seen, 2)?;
                        headers = DirectDecoder::cached(
                            &mut d.misses,
                            &mut d.headers,
                            Block::Headers,
                            c,
                        )?;
                    }
                    b"body" => {
                        once(&mut seen, 3)?;
                        body = Some(c.string()?);
                    }
                    b"expected_status" => {
                        once(&mut seen, 4)?;
                        let scratch = &mut d.statuses;
                        expected_status = Some(interned(&mut d.status_lists, c, |at| {
                            Ok(interners.statuses.intern(statuses(at, scratch)?))
                        })?);
                    }
                    b"insecure_skip_verify" => {
                        once(&mut seen, 5)?;
                        insecure_skip_verify = c.bool()?;
                    }
                    b"body_contains" => {
                        once(&mut seen, 7)?;
                        body_contains = Some(c.string()?);
                    }
                    b"max_response_time" => {
                        once(&mut seen, 8)?;
                        max_response_time_ms = Some(c.duration_ms()?);
                    }
                    b"ca_file" => {
                        once(&mut seen, 9)?;
                        ca_file = Some(c.string()?);
                    }
                    // `body_regex` (compiled at load to check it) and anything unknown.
                    _ => return bail(),
                }
            }
            let url = required(url)?;
            if check::http_url(&url).is_err()
                || body_contains.as_deref().is_some_and(|b| check::body_contains(b).is_err())
                || ca_file.as_deref().is_some_and(|p| interners.ca_file(p).is_err())
            {
                return bail();
            }
            let headers = match headers {
                Some(h) => h,
                None if !d.misses.is_empty() => return bail(),
                None => Arc::clone(
                    d.no_headers.get_or_insert_with(|| interners.headers.intern(Vec::new())),
                ),
            };
            let method_text = method.as_deref().map_or("GET", |m| m.as_str());
            if check::request_size(&url, method_text, body.as_deref(), &headers).is_err() {
                return bail();
            }
            Pulse::Http(HttpPulse {
                url,
                method: match method {
                    Some(m) => m,
                    None => Arc::clone(
                        d.get.get_or_insert_with(|| interners.methods.intern("GET".into())),
                    ),
                },
                headers,
                expected_status: match expected_status {
                    Some(e) => e,
                    None => Arc::clone(
                        d.no_statuses.get_or_insert_with(|| interners.statuses.intern(Vec::new())),
                    ),
                },
                insecure_skip_verify,
                extra: HttpExtra {
                    body,
                    body_contains,
                    body_regex: None,
                    max_response_time_ms,
                    ca_file,
                    expected_headers: Headers::new(),
                }
                .boxed(),
            })
        }
        "tcp" | "udp" | "grpc" => {
            let (mut host, mut port_v, mut extra) = (None, None, None);
            let extra_key: &[u8] = match kind {
                "udp" => b"payload",
                "grpc" => b"service",
                _ => b"",
            };
            while let Some(key) = config_key(c, &mut seen, &mut first, &mut retries)? {
                if key == b"host" {
                    once(&mut seen, 0)?;
                    host = Some(c.string()?);
                } else if key == b"port" {
                    once(&mut seen, 1)?;
                    port_v = Some(port(c)?);
                } else if !extra_key.is_empty() && key == extra_key {
                    once(&mut seen, 2)?;
                    extra = Some(c.string()?);
                } else {
                    return bail();
                }
            }
            let host = required(host)?;
            let port = port_v.ok_or(Stop::Bail)?;
            let refused = match kind {
                "udp" => extra.as_deref().is_some_and(|p| check::udp_payload(p).is_err()),
                "grpc" => {
                    check::grpc_authority(&host).is_err()
                        || extra.as_deref().is_some_and(|s| check::grpc_service(s).is_err())
                }
                _ => false,
            };
            if refused {
                return bail();
            }
            match kind {
                "udp" => Pulse::Udp(UdpPulse { host, port, payload: extra }),
                "grpc" => Pulse::Grpc(GrpcPulse { host, port, service: extra, tls: None }),
                _ => Pulse::Tcp(TcpPulse { host, port }),
            }
        }
        "icmp" => {
            let (mut host, mut count, mut ignore_privilege) = (None, 1, false);
            while let Some(key) = config_key(c, &mut seen, &mut first, &mut retries)? {
                match key {
                    b"host" => {
                        once(&mut seen, 0)?;
                        host = Some(c.string()?);
                    }
                    b"count" => {
                        once(&mut seen, 1)?;
                        count = c.int(1, i64::from(cpra_net::limits::MAX_ICMP_COUNT))? as u32;
                    }
                    b"ignore_privilege" => {
                        once(&mut seen, 2)?;
                        ignore_privilege = c.bool()?;
                    }
                    _ => return bail(),
                }
            }
            Pulse::Icmp(IcmpPulse { host: required(host)?, count, ignore_privilege })
        }
        "dns" => {
            let (mut host, mut server) = (None, None);
            while let Some(key) = config_key(c, &mut seen, &mut first, &mut retries)? {
                match key {
                    b"host" => {
                        once(&mut seen, 0)?;
                        host = Some(c.string()?);
                    }
                    b"server" => {
                        once(&mut seen, 1)?;
                        server = Some(c.string()?);
                    }
                    _ => return bail(),
                }
            }
            let host = required(host)?;
            if check::dns_name(&host).is_err()
                || server
                    .as_deref()
                    .map_or_else(check::dns_system_server, check::dns_server)
                    .is_err()
            {
                return bail();
            }
            Pulse::Dns(DnsPulse {
                host,
                server,
                record_type: cpra_net::dns::DnsRecord::A,
                expect: None,
            })
        }
        "tls" => {
            let (mut host, mut port_v, mut server_name) = (None, 443, None);
            let (mut warn_days, mut critical_days, mut insecure_skip_verify) =
                (DEFAULT_TLS_WARN_DAYS, DEFAULT_TLS_CRITICAL_DAYS, false);
            while let Some(key) = config_key(c, &mut seen, &mut first, &mut retries)? {
                match key {
                    b"host" => {
                        once(&mut seen, 0)?;
                        host = Some(c.string()?);
                    }
                    b"port" => {
                        once(&mut seen, 1)?;
                        port_v = port(c)?;
                    }
                    b"server_name" => {
                        once(&mut seen, 2)?;
                        server_name = Some(c.string()?);
                    }
                    b"warn_days" => {
                        once(&mut seen, 3)?;
                        warn_days = c.int(0, 3650)? as u32;
                    }
                    b"critical_days" => {
                        once(&mut seen, 4)?;
                        critical_days = c.int(0, 3650)? as u32;
                    }
                    b"insecure_skip_verify" => {
                        once(&mut seen, 5)?;
                        insecure_skip_verify = c.bool()?;
                    }
                    _ => return bail(),
                }
            }
            let host = required(host)?;
            // critical_days over warn_days: an error in the general path.
            if critical_days > warn_days
                || check::tls_server_name(server_name.as_deref().unwrap_or(&host)).is_err()
            {
                return bail();
            }
            Pulse::Tls(TlsPulse {
                host,
                port: port_v,
                server_name,
                warn_days,
                critical_days,
                insecure_skip_verify,
            })
        }
        "docker" => {
            let mut container = None;
            while let Some(key) = config_key(c, &mut seen, &mut first, &mut retries)? {
                match key {
                    b"container" => {
                        once(&mut seen, 0)?;
                        container = Some(c.string()?);
                    }
                    _ => return bail(),
                }
            }
            let container = required(container)?;
            if check::docker_container(&container).is_err() {
                return bail();
            }
            Pulse::Docker(DockerPulse { container })
        }
        _ => return bail(),
    };
    Ok((pulse, retries))
}

/// `expected_status`: a list of status codes, or one alone.
fn statuses(c: &mut Cursor, scratch: &mut Vec<u16>) -> R<Vec<u16>> {
    if c.ws()? != b'[' {
        return Ok(vec![c.int(100, 599)? as u16]);
    }
    c.p += 1;
    scratch.clear();
    let mut first = true;
    while c.next_item(&mut first)? {
        if scratch.len() == MAX_LIST_ITEMS {
            return bail();
        }
        scratch.push(c.int(100, 599)? as u16);
    }
    Ok(exact(scratch))
}

#[cfg(test)]
mod tests {
    //! The direct decoder against the general path: the same bytes must give the same
    //! monitors, problems (with positions), counts and registry on both, whatever the input.

    use std::collections::HashMap;
    use std::io::Cursor as Bytes;

    use super::super::event::EventSource;
    use super::super::export::manifest_json;
    use super::super::gen::Rng;
    use super::super::json::JsonReader;
    use super::super::load::load_events;
    use super::super::{load_str, Format, LoadOptions, LoadReport, Monitor};

    const HEAD: &str = r#"{"version":"1","endpoints":{"hook":{"type":"webhook","config":{"url":"http://127.0.0.1:9/a"}},"pd":{"type":"pagerduty","config":{"routing_key":"k"}}},"notification_groups":{"oncall":["hook","pd"],"solo":["hook"]},"monitors":["#;

    /// Loads `text` as JSON through a reader with a `buffer`-byte buffer.
    fn load(
        text: &[u8],
        direct: bool,
        buffer: usize,
        env: &HashMap<String, String>,
    ) -> (Vec<Monitor>, LoadReport) {
        let opts = LoadOptions { env, direct_json: direct, ..LoadOptions::default() };
        let src: Box<dyn EventSource> =
            Box::new(JsonReader::with_buffer(Bytes::new(text.to_vec()), buffer));
        let mut monitors = Vec::new();
        let report = load_events(src, Format::Json, "t.json", &opts, |m| monitors.push(m));
        (monitors, report)
    }

    fn env() -> HashMap<String, String> {
        HashMap::from([("TOKEN".to_string(), "s3cret".to_string())])
    }

    /// Asserts both paths agree on `text`, with the general path's own buffer and with
    /// `buffer` for the direct one (so items cross refills everywhere). The number of
    /// monitors the direct decoder took.
    fn agree(bytes: &[u8], buffer: usize) -> usize {
        let text = String::from_utf8_lossy(bytes);
        let env = env();
        let (gm, gr) = load(bytes, false, 256 << 10, &env);
        let (dm, dr) = load(bytes, true, buffer, &env);
        assert_eq!(dm, gm, "monitors differ on\n{text}");
        assert_eq!(dr.problems.kept, gr.problems.kept, "problems differ on\n{text}");
        assert_eq!(
            (dr.problems.errors, dr.problems.warnings, dr.monitors_seen, dr.monitors_loaded),
            (gr.problems.errors, gr.problems.warnings, gr.monitors_seen, gr.monitors_loaded)
        );
        assert_eq!(
            (dr.distinct_codes, dr.distinct_headers),
            (gr.distinct_codes, gr.distinct_headers)
        );
        assert_eq!(format!("{:?}", dr.registry), format!("{:?}", gr.registry));
        assert_eq!(gr.monitors_direct, 0);
        dr.monitors_direct
    }

    fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
        items[(rng.next() % items.len() as u64) as usize]
    }

    /// One monitor's JSON: mostly well-formed and valid, with every kind of value the direct
    /// decoder must hand to the general path mixed in.
    /// `clean`: no odd values (so most such monitors are valid and take the direct path).
    fn monitor(rng: &mut Rng, i: usize, pretty: bool, clean: bool) -> String {
        let odd = |rng: &mut Rng| rng.next().is_multiple_of(8) && !clean;
        let mut fields: Vec<String> = Vec::new();
        let name = if odd(rng) {
            pick(
                rng,
                &[
                    r#""""#,
                    "7",
                    "null",
                    r#""caf\u00e9 \"x\"""#,
                    r#""é ünïcode""#,
                    r#""a${TOKEN}""#,
                    r#""a$b""#,
                    r#""svc 1 (eu)""#,
                ],
            )
            .to_string()
        } else {
            format!("\"svc-{i}\"")
        };
        if !(odd(rng) && rng.next().is_multiple_of(4)) {
            fields.push(format!("\"name\":{name}"));
        }
        if rng.next().is_multiple_of(5) {
            let id = pick(rng, &[r#""m.1:x_y-z""#, r#""-bad""#, "null", "12", r#""dup""#, r#""""#]);
            fields.push(format!("\"id\":{id}"));
        }
        if rng.next().is_multiple_of(6) {
            fields.push(format!(
                "\"enabled\":{}",
                pick(rng, &["true", "false", r#""yes""#, "null", "1"])
            ));
        }
        if rng.next().is_multiple_of(2) {
            let tags = if odd(rng) {
                pick(rng, &[r#""solo""#, "[]", r#"{"k":"v"}"#, r#"[1,"x"]"#, "null", r#"[true]"#])
            } else {
                r#"["synthetic","shard-1"]"#
            };
            fields.push(format!("\"tags\":{tags}"));
        }
        if !(odd(rng) && rng.next().is_multiple_of(4)) {
            fields.push(format!("\"pulse_check\":{}", pulse_check(rng, clean)));
        }
        if !rng.next().is_multiple_of(4) {
            let pool = [
                r#"{"red":{"notify_group":"oncall"},"yellow":{"notify":"log","config":{"file":"/tmp/a.log"}}}"#,
                r#"{"red":{"notify_group":"oncall"},"yellow":{"notify":"log","config":{"file":"/tmp/a.log"}}}"#,
                r#"{"RED":{"notify_group":"solo"},"Green":{"notify":"webhook","config":{"url":"http://127.0.0.1:9/b","headers":{"Authorization":"Bearer ${TOKEN}"}}}}"#,
                "{}",
                "null",
                r#"{"red":{"notify":"slack","config":{"hook":"http://127.0.0.1:9/s"}}, "cyan":{"dispatch":false,"notify":"log"}}"#,
                r#"{"red":{"notify_group":"nobody"}}"#,
                r#"{"purple":{"notify":"log"}}"#,
                r#"{"red":{"notify":"log","extra":1}}"#,
            ];
            let codes = pick(rng, if clean { &pool[..6] } else { &pool });
            fields.push(format!("\"codes\":{codes}"));
        }
        if rng.next().is_multiple_of(5) {
            let pool = [
                r#"{"action":"docker","target":{"container":"web-1","timeout":"30s"},"max_failures":2}"#,
                r#"{"action":"webhook","target":{"url":"http://127.0.0.1:9/r","headers":["X-A: 1"]},"retries":1}"#,
                "null",
                r#"{"action":"systemd","target":{"unit":"nginx.service"}}"#,
                r#"{"action":"reboot"}"#,
            ];
            let iv = pick(rng, if clean { &pool[..4] } else { &pool });
            fields.push(format!("\"intervention\":{iv}"));
        }
        if rng.next().is_multiple_of(6) {
            let pool = [
                r#"[{"cron":"0 2 * * *","duration":"1h"}]"#,
                r#"[{"cron":"0 2 * * *","duration":"1h","timezone":"Europe/Paris"}]"#,
                r#"{"cron":"0 3 * * 0","duration":"30m"}"#,
                "null",
                r#"[{"cron":"61 2 * * *","duration":"1h"}]"#,
            ];
            let mw = pick(rng, if clean { &pool[..4] } else { &pool });
            fields.push(format!("\"maintenance\":{mw}"));
        }
        if rng.next().is_multiple_of(20) && !clean {
            fields.push(
                pick(rng, &[r#""extra":1"#, r#""name":"again""#, r#""tags":["t"]"#]).to_string(),
            );
        }
        shuffle_some(rng, &mut fields);
        let sep = if pretty { ",\n    " } else { "," };
        let open = if pretty { "{\n    " } else { "{" };
        let close = if pretty { "\n  }" } else { "}" };
        format!("{open}{}{close}", fields.join(sep))
    }

    fn shuffle_some(rng: &mut Rng, fields: &mut [String]) {
        if rng.next().is_multiple_of(3) {
            for k in (1..fields.len()).rev() {
                let j = (rng.next() % (k as u64 + 1)) as usize;
                fields.swap(k, j);
            }
        }
    }

    fn pulse_check(rng: &mut Rng, clean: bool) -> String {
        let odd = |rng: &mut Rng| rng.next().is_multiple_of(10) && !clean;
        let kind = if odd(rng) {
            pick(rng, &["HTTP", "Tcp", "htp", "3", "null"])
        } else {
            pick(
                rng,
                &["http", "http", "http", "tcp", "icmp", "dns", "udp", "grpc", "tls", "docker"],
            )
        };
        let mut f: Vec<String> = Vec::new();
        if !(odd(rng) && rng.next().is_multiple_of(3)) {
            let k =
                if matches!(kind, "3" | "null") { kind.to_string() } else { format!("\"{kind}\"") };
            f.push(format!("\"type\":{k}"));
        }
        if !rng.next().is_multiple_of(3) {
            let v = if odd(rng) {
                pick(rng, &["30", r#""0s""#, r#""bad""#, r#""500us""#, "null", r#""1.5m""#])
            } else {
                pick(rng, &[r#""60s""#, r#""1m30s""#, r#""10s""#])
            };
            f.push(format!("\"interval\":{v}"));
        }
        if !rng.next().is_multiple_of(3) {
            let v = if odd(rng) {
                pick(rng, &[r#""2m""#, r#""0ms""#, "5"])
            } else {
                pick(rng, &[r#""5s""#, r#""500ms""#])
            };
            f.push(format!("\"timeout\":{v}"));
        }
        for key in ["unhealthy_threshold", "healthy_threshold", "max_failures", "retries"] {
            if rng.next().is_multiple_of(3) {
                let v = if odd(rng) {
                    pick(
                        rng,
                        &["-1", r#""2""#, "1.5", "99999999999999999999", "01", "null", "-0", "1e2"],
                    )
                } else if key == "retries" {
                    // More than the engine makes is a warning: an odd value.
                    pick(rng, &["1", "2", "0"])
                } else {
                    pick(rng, &["1", "2", "3", "0"])
                };
                f.push(format!("\"{key}\":{v}"));
            }
        }
        if rng.next().is_multiple_of(5) {
            f.push(format!("\"groups\":{}", pick(rng, &[r#""edge""#, r#"["a","b"]"#, "[]", "{}"])));
        }
        if !(odd(rng) && rng.next().is_multiple_of(3)) {
            f.push(format!("\"config\":{}", config(rng, kind, clean)));
        }
        if rng.next().is_multiple_of(40) && !clean {
            f.push(r#""typo":1"#.to_string());
        }
        shuffle_some(rng, &mut f);
        format!("{{{}}}", f.join(","))
    }

    fn config(rng: &mut Rng, kind: &str, clean: bool) -> String {
        let odd = |rng: &mut Rng| rng.next().is_multiple_of(12) && !clean;
        let host = || if true { r#""127.0.0.1""# } else { "" };
        let mut f: Vec<String> = Vec::new();
        match kind.to_ascii_lowercase().as_str() {
            "http" | "htp" => {
                let url = if odd(rng) {
                    pick(
                        rng,
                        &[
                            r#""ftp://x""#,
                            r#""""#,
                            r#""http://127.0.0.1/${TOKEN}""#,
                            r#""http:\/\/127.0.0.1\/e""#,
                            "5",
                        ],
                    )
                } else {
                    r#""http://127.0.0.1:8080/health""#
                };
                if !odd(rng) {
                    f.push(format!("\"url\":{url}"));
                }
                if rng.next().is_multiple_of(2) {
                    f.push(format!(
                        "\"method\":{}",
                        pick(rng, &[r#""GET""#, r#""post""#, r#""""#])
                    ));
                }
                if rng.next().is_multiple_of(4) {
                    f.push(format!(
                        "\"headers\":{}",
                        pick(
                            rng,
                            &[
                                r#"{"X-A":"1"}"#,
                                r#"["X-A: 1","X-B:2"]"#,
                                r#"{"Authorization":"Bearer ${TOKEN}"}"#,
                                r#"["broken"]"#,
                                "null",
                                "{}"
                            ]
                        )
                    ));
                }
                if rng.next().is_multiple_of(6) {
                    f.push(format!(
                        "\"body\":{}",
                        pick(rng, &[r#""{}""#, r#""line\nbreak""#, r#""x""#])
                    ));
                }
                if rng.next().is_multiple_of(2) {
                    let st = if odd(rng) {
                        pick(rng, &["[99]", "[\"200\"]", "204", "[200.0]", "null", "[]", "[600]"])
                    } else {
                        pick(rng, &["[200]", "[200,204]", "200"])
                    };
                    f.push(format!("\"expected_status\":{st}"));
                }
                if rng.next().is_multiple_of(8) {
                    f.push(format!(
                        "\"insecure_skip_verify\":{}",
                        pick(rng, &["true", "false", r#""true""#])
                    ));
                }
                if rng.next().is_multiple_of(8) {
                    f.push(format!("\"body_contains\":{}", pick(rng, &[r#""ok""#, "1"])));
                }
                if rng.next().is_multiple_of(10) {
                    f.push(format!("\"body_regex\":{}", pick(rng, &[r#""^ok$""#, r#""(""#])));
                }
                if rng.next().is_multiple_of(8) {
                    f.push(format!("\"max_response_time\":{}", pick(rng, &[r#""2s""#, r#""0s""#])));
                }
                if rng.next().is_multiple_of(10) {
                    // A readable file half the time (the direct path takes it), else one the
                    // general path reports.
                    let path = pick(rng, &["tests/fixtures/ca.pem", "/surely/not/ca.pem"]);
                    f.push(format!("\"ca_file\":\"{path}\""));
                }
            }
            "tcp" | "udp" | "grpc" | "3" | "null" => {
                if !odd(rng) {
                    f.push(format!("\"host\":{}", host()));
                }
                if !odd(rng) {
                    f.push(format!(
                        "\"port\":{}",
                        if odd(rng) { pick(rng, &["0", "70000", r#""80""#]) } else { "8080" }
                    ));
                }
                if rng.next().is_multiple_of(3) {
                    f.push(
                        pick(rng, &[r#""payload":"ping""#, r#""service":"grpc.health.v1.Health""#])
                            .to_string(),
                    );
                }
            }
            "icmp" => {
                f.push(format!("\"host\":{}", host()));
                if rng.next().is_multiple_of(3) {
                    f.push(format!("\"count\":{}", pick(rng, &["3", "0", "101"])));
                }
                if rng.next().is_multiple_of(3) {
                    f.push(format!("\"ignore_privilege\":{}", pick(rng, &["true", "false"])));
                }
            }
            "dns" => {
                f.push(r#""host":"example.internal""#.to_string());
                if rng.next().is_multiple_of(2) {
                    f.push(r#""server":"127.0.0.1:53""#.to_string());
                }
            }
            "tls" => {
                f.push(format!("\"host\":{}", host()));
                if rng.next().is_multiple_of(2) {
                    f.push(format!("\"port\":{}", pick(rng, &["8443", "443"])));
                }
                if rng.next().is_multiple_of(3) {
                    f.push(r#""server_name":"example.internal""#.to_string());
                }
                if rng.next().is_multiple_of(3) {
                    f.push(format!("\"warn_days\":{}", pick(rng, &["20", "5", "4000"])));
                }
                if rng.next().is_multiple_of(3) {
                    f.push(format!("\"critical_days\":{}", pick(rng, &["3", "10"])));
                }
                if rng.next().is_multiple_of(4) {
                    f.push(r#""insecure_skip_verify":true"#.to_string());
                }
            }
            _ => {
                if !odd(rng) {
                    f.push(r#""container":"web-1""#.to_string());
                }
            }
        }
        // Every type reads `retries`; past the engine's bound it is a warning (general path).
        if rng.next().is_multiple_of(6) {
            let v =
                if odd(rng) { pick(rng, &["5", "-1", "1.5"]) } else { pick(rng, &["0", "1", "2"]) };
            f.push(format!("\"retries\":{v}"));
        }
        if rng.next().is_multiple_of(30) && !clean {
            f.push(r#""unknown":true"#.to_string());
        }
        if rng.next().is_multiple_of(30) && !f.is_empty() && !clean {
            let again = f[0].clone();
            f.push(again);
        }
        shuffle_some(rng, &mut f);
        format!("{{{}}}", f.join(","))
    }

    /// Breaks the syntax of one monitor (the load stops there, on both paths alike).
    const SYNTAX_ERRORS: &[&str] = &[r#"["a",]"#, r#"["a" "b"]"#, "[200,]", "tru", r#""open"#];

    fn manifest(rng: &mut Rng, monitors: usize, broken: bool) -> String {
        let pretty = rng.next().is_multiple_of(2);
        let mut items: Vec<String> = (0..monitors)
            .map(|i| {
                let clean = rng.next().is_multiple_of(2);
                monitor(rng, i, pretty, clean)
            })
            .collect();
        if broken {
            let at = (rng.next() % monitors as u64) as usize;
            let bad = pick(rng, SYNTAX_ERRORS);
            items[at] = format!(r#"{{"name":"broken","tags":{bad}}}"#);
        }
        let sep = if pretty { ",\n  " } else { pick(rng, &[",", "\n,", " , "]) };
        format!("{HEAD}{}]}}", items.join(sep))
    }

    #[test]
    fn direct_and_general_paths_agree_on_generated_and_mutated_manifests() {
        let mut rng = Rng(0x5eed);
        let mut direct = 0;
        for round in 0..60 {
            let text = manifest(&mut rng, 40, round % 6 == 5);
            let buffer = [7, 64, 301, 4096, 256 << 10][round % 5];
            direct += agree(text.as_bytes(), buffer);
        }
        // Half the generated monitors are written plainly: the direct path is exercised (a
        // block's first monitor takes the general path, to fill the cache).
        assert!(direct > 300, "{direct}");
    }

    #[test]
    fn direct_and_general_paths_agree_on_byte_mutations() {
        // Bytes that matter to JSON's grammar and to the decoders' checks.
        const BYTES: &[u8] = b"\"{}[],:\\ \n0-1.9eEtfnul$aZ\x01\xc3\xa9\xff";
        let mut rng = Rng(0xb17e);
        let mut text_rng = Rng(3);
        let base = manifest(&mut text_rng, 6, false);
        for round in 0..400 {
            let mut bytes = base.clone().into_bytes();
            for _ in 0..1 + rng.next() % 4 {
                let at = HEAD.len() + (rng.next() as usize % (bytes.len() - HEAD.len()));
                let b = BYTES[rng.next() as usize % BYTES.len()];
                match rng.next() % 3 {
                    0 => bytes[at] = b,
                    1 => bytes.insert(at, b),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            agree(&bytes, [9, 256 << 10][round % 2]);
        }
    }

    #[test]
    fn direct_and_general_paths_agree_on_the_example_fleet_and_every_field() {
        for yaml in [
            include_str!("../../../docs/examples/fleet.yaml"),
            super::super::tests::ALL_FIELDS_YAML,
        ] {
            let (monitors, report) = load_str(yaml, Some(Format::Yaml), &LoadOptions::default());
            assert!(report.is_valid());
            let json =
                serde_json::to_string_pretty(&manifest_json(&monitors, &report.registry, None))
                    .unwrap();
            for buffer in [5, 100, 256 << 10] {
                agree(json.as_bytes(), buffer);
            }
        }
    }

    #[test]
    fn retries_in_every_config_take_the_direct_path_and_agree() {
        let configs = [
            ("http", r#""url":"http://127.0.0.1/""#),
            ("tcp", r#""host":"h","port":1"#),
            ("icmp", r#""host":"127.0.0.1""#),
            ("dns", r#""host":"example.com","server":"127.0.0.1""#),
            ("udp", r#""host":"h","port":1"#),
            ("grpc", r#""host":"h","port":1"#),
            ("tls", r#""host":"example.com""#),
            ("docker", r#""container":"web""#),
        ];
        for (kind, fields) in configs {
            for (top, inner) in [("1", "2"), ("2", "0")] {
                let json = format!(
                    r#"{HEAD}{{"name":"m","pulse_check":{{"type":"{kind}","retries":{top},"config":{{"retries":{inner},{fields}}}}}}}]}}"#
                );
                assert_eq!(agree(json.as_bytes(), 256 << 10), 1, "{json}");
            }
            // Past the bound: a warning, so the general path.
            let json = format!(
                r#"{HEAD}{{"name":"m","pulse_check":{{"type":"{kind}","config":{{{fields},"retries":3}}}}}}]}}"#
            );
            assert_eq!(agree(json.as_bytes(), 256 << 10), 0, "{json}");
        }
    }

    #[test]
    fn a_plain_run_ends_exactly_at_the_first_special_byte() {
        let special = |c: u8| matches!(c, b'"' | b'\\' | b'$' | 0..=0x1f | 0x80..);
        for at in 0..20 {
            for c in 0..=255u8 {
                // Special bytes after the first one: they must not hide it or move it.
                let mut b = vec![b'a'; 24];
                b[at] = c;
                b[at + 1] = 0;
                b[23] = b'"';
                let want = if special(c) { at } else { at + 1 };
                assert_eq!(super::plain_run(&b), want, "byte {c:#x} at {at}");
            }
        }
    }

    #[test]
    fn blocks_past_the_cache_bound_take_the_general_path() {
        let url = format!("http://127.0.0.1:9/{}", "p".repeat(super::MAX_CACHED_BLOCK_BYTES));
        let codes = format!(r#"{{"red":{{"notify":"webhook","config":{{"url":"{url}"}}}}}}"#);
        let items: Vec<String> = (0..3)
            .map(|i| {
                format!(
                    r#"{{"name":"m{i}","pulse_check":{{"type":"tcp","config":{{"host":"127.0.0.1","port":1}}}},"codes":{codes}}}"#
                )
            })
            .collect();
        let text = format!("{HEAD}{}]}}", items.join(","));
        assert_eq!(agree(text.as_bytes(), 256 << 10), 0);
        let (monitors, report) = load(text.as_bytes(), true, 256 << 10, &env());
        assert_eq!((monitors.len(), report.distinct_codes), (3, 1));
    }

    #[test]
    fn a_monitor_bigger_than_the_buffer_bound_takes_the_general_path() {
        let body = "x".repeat(crate::limits::MAX_RAW_ITEM_BYTES);
        let text = format!(
            r#"{HEAD}{{"name":"big","pulse_check":{{"type":"http","config":{{"url":"http://127.0.0.1/","body":"{body}"}}}}}},{{"name":"small","pulse_check":{{"type":"tcp","config":{{"host":"127.0.0.1","port":1}}}}}}]}}"#
        );
        assert_eq!(agree(text.as_bytes(), 1024), 1);
    }
}
