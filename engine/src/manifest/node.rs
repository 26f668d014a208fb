//! A small tree for one monitor (or one top-level block), with a position on every node.
//!
//! The loader builds one tree per monitor from the event stream, decodes it and reuses its
//! storage for the next one, so only one monitor's tree exists at a time and, once the
//! [`Arena`] has grown to the largest monitor, building a tree allocates nothing. Built
//! iteratively (no recursion) with bounded depth and size, so hostile input cannot blow the
//! stack or the heap.
//!
//! Storage: every node is a fixed-size record in one `Vec` and every scalar's text a range of
//! one `String`; a container's children sit side by side in the `Vec` (written when the
//! container closes). Readers see [`Node`]s: small `Copy` views that borrow the tree.
//! Why not a `Node` owning `String`s and `Vec`s: that tree cost an allocation per scalar and
//! per container and a free for each afterwards, about a third of the JSON load time.

use std::collections::HashMap;
use std::fmt;

use super::event::{EventSource, ParseEvent, Pos, SyntaxError};
use crate::limits::{
    ALIAS_BUDGET_BASE_NODES, ALIAS_BUDGET_PER_NODE, MAX_ALIAS_NODES, MAX_ANCHORED_NODES,
    MAX_ANCHORS, MAX_BLOCK_NODES, MAX_NODE_DEPTH, MAX_TREE_TEXT_BYTES,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Plain,
    Quoted,
    Seq,
    Map,
}

/// One stored node. `start`/`len`: a scalar's text range in `Tree::text`, or a container's
/// children range in `Tree::nodes`. `key_*`: the key it sits under, when in a mapping.
#[derive(Clone, Copy, Debug)]
struct Rec {
    /// [`key_tag`] of the key: field lookups compare this word before any text.
    key_tag: u64,
    pos: Pos,
    key_pos: Pos,
    start: u32,
    len: u32,
    key_start: u32,
    key_len: u32,
    tag: Tag,
}

impl Rec {
    fn scalar(tag: Tag, start: u32, len: u32, pos: Pos) -> Rec {
        Rec { key_tag: 0, pos, key_pos: Pos::default(), start, len, key_start: 0, key_len: 0, tag }
    }

    fn is_container(&self) -> bool {
        matches!(self.tag, Tag::Seq | Tag::Map)
    }

    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }

    fn key_range(&self) -> std::ops::Range<usize> {
        self.key_start as usize..self.key_start as usize + self.key_len as usize
    }
}

/// A built tree (one block), owned: what the loader keeps of `endpoints` until the end.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Rec>,
    text: String,
    root: Rec,
    /// Keys given twice in one mapping, noted as the mappings close (at most
    /// [`MAX_DUPLICATES_NOTED`]): the decoder reports them, whichever mapping they are in.
    dups: Vec<Dup>,
}

/// Most duplicate keys noted per tree: as many as a load shows (`MAX_PROBLEMS`); a block
/// with more is reported by its first ones.
pub const MAX_DUPLICATES_NOTED: usize = crate::limits::MAX_PROBLEMS;

/// Mappings up to this many entries are searched for a repeated key pair by pair (a monitor's
/// mappings have a handful); longer ones through a hash map, so a hostile mapping of a
/// million keys costs a million lookups, not a trillion compares.
const PAIRWISE_KEYS: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Dup {
    key_start: u32,
    key_len: u32,
    pos: Pos,
    first: Pos,
}

/// A key given twice in one mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuplicateKey<'t> {
    pub key: &'t str,
    /// The second one's position.
    pub pos: Pos,
    /// The first one's.
    pub first: Pos,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            nodes: Vec::new(),
            text: String::new(),
            root: Rec::scalar(Tag::Plain, 0, 0, Pos::default()),
            dups: Vec::new(),
        }
    }
}

impl Tree {
    pub fn root(&self) -> Node<'_> {
        self.view(self.root)
    }

    fn clear(&mut self) {
        self.nodes.clear();
        self.text.clear();
        self.dups.clear();
    }

    /// Every key given twice in a mapping of this tree, in the order the mappings closed.
    pub fn duplicate_keys(&self) -> impl Iterator<Item = DuplicateKey<'_>> + '_ {
        self.dups.iter().map(|d| DuplicateKey {
            key: self.str(d.key_start as usize..(d.key_start + d.key_len) as usize),
            pos: d.pos,
            first: d.first,
        })
    }

    /// Notes the keys of `entries` (one mapping's) that an earlier entry already has.
    fn note_duplicates(&mut self, entries: &[Rec]) {
        let same = |a: &Rec, b: &Rec| {
            // Equal tags mean equal lengths; under 8 bytes, equal keys (see `key_tag`).
            a.key_tag == b.key_tag
                && (a.key_len < 8 || self.str(a.key_range()) == self.str(b.key_range()))
        };
        let mut found: Vec<Dup> = Vec::new();
        let is_merge = |r: &Rec| self.str(r.key_range()) == "<<";
        if entries.len() <= PAIRWISE_KEYS {
            for (i, r) in entries.iter().enumerate().skip(1) {
                if let Some(p) = entries[..i].iter().find(|p| same(p, r)) {
                    if !is_merge(r) {
                        found.push(Dup {
                            key_start: r.key_start,
                            key_len: r.key_len,
                            pos: r.key_pos,
                            first: p.key_pos,
                        });
                    }
                }
            }
        } else {
            let mut seen: HashMap<&str, Pos> = HashMap::with_capacity(entries.len());
            for r in entries {
                let key = self.str(r.key_range());
                if let Some(&first) = seen.get(key) {
                    if key != "<<" {
                        found.push(Dup {
                            key_start: r.key_start,
                            key_len: r.key_len,
                            pos: r.key_pos,
                            first,
                        });
                    }
                } else {
                    seen.insert(key, r.key_pos);
                }
            }
        }
        let room = MAX_DUPLICATES_NOTED.saturating_sub(self.dups.len());
        self.dups.extend(found.into_iter().take(room));
    }

    fn str(&self, range: std::ops::Range<usize>) -> &str {
        // Ranges are made by `push_text` from `str`s, so they sit on character boundaries.
        self.text.get(range).unwrap_or_default()
    }

    fn view(&self, r: Rec) -> Node<'_> {
        let kind = match r.tag {
            Tag::Plain => NodeKind::Scalar { value: self.str(r.range()), quoted: false },
            Tag::Quoted => NodeKind::Scalar { value: self.str(r.range()), quoted: true },
            Tag::Seq => NodeKind::Seq(Items { tree: self, start: r.start, len: r.len }),
            Tag::Map => NodeKind::Map(Entries { tree: self, start: r.start, len: r.len }),
        };
        Node { kind, pos: r.pos }
    }

    fn entry(&self, r: Rec) -> Entry<'_> {
        Entry { key: self.str(r.key_range()), key_pos: r.key_pos, value: self.view(r) }
    }

    fn push_text(&mut self, s: &str, pos: Pos) -> Result<(u32, u32), SyntaxError> {
        let start = self.text.len();
        if start + s.len() > MAX_TREE_TEXT_BYTES {
            return Err(SyntaxError {
                pos,
                message: format!("block has more than {MAX_TREE_TEXT_BYTES} bytes of text"),
            });
        }
        self.text.push_str(s);
        Ok((start as u32, s.len() as u32))
    }

    /// Appends the scalar `src` has just read (see `push_text`).
    fn push_scalar(&mut self, src: &dyn EventSource, pos: Pos) -> Result<(u32, u32), SyntaxError> {
        let start = self.text.len();
        self.text.push_str(src.scalar());
        if self.text.len() > MAX_TREE_TEXT_BYTES {
            self.text.truncate(start);
            return Err(SyntaxError {
                pos,
                message: format!("block has more than {MAX_TREE_TEXT_BYTES} bytes of text"),
            });
        }
        Ok((start as u32, (self.text.len() - start) as u32))
    }

    /// Copies the subtree `root` of `src` (its children already in `src.nodes`) into `self`,
    /// returning its record there (children in `self.nodes`) and its node count. Iterative:
    /// each container's children block is copied whole, then the containers in it are
    /// visited from a work list.
    fn copy_from(&mut self, src: &Tree, root: Rec) -> Result<(Rec, usize), SyntaxError> {
        let mut out = root;
        let mut count = 1;
        self.copy_texts(src, &mut out)?;
        let mut todo: Vec<usize> = Vec::new();
        if out.is_container() {
            out.start = self.copy_block(src, out, &mut todo)?;
            count += out.len as usize;
        }
        while let Some(i) = todo.pop() {
            let r = self.nodes[i];
            self.nodes[i].start = self.copy_block(src, r, &mut todo)?;
            count += r.len as usize;
        }
        Ok((out, count))
    }

    /// Nodes in the subtree `root` (itself included), without copying it, counted up to
    /// `limit`: past it the count stops (at some number above `limit`), so nested anchors on
    /// one big block do not each walk all of it. Iterative.
    fn subtree_nodes(&self, root: Rec, limit: usize) -> usize {
        let mut count = 1;
        let mut todo = vec![root];
        while let Some(r) = todo.pop() {
            if count > limit {
                break;
            }
            if r.is_container() {
                let children = &self.nodes[r.range()];
                count += children.len();
                todo.extend(children.iter().filter(|c| c.is_container()));
            }
        }
        count
    }

    fn copy_texts(&mut self, src: &Tree, r: &mut Rec) -> Result<(), SyntaxError> {
        if r.key_len > 0 {
            (r.key_start, r.key_len) = self.push_text(src.str(r.key_range()), r.pos)?;
        }
        if !r.is_container() {
            (r.start, r.len) = self.push_text(src.str(r.range()), r.pos)?;
        }
        Ok(())
    }

    /// Copies the children of `parent` (a record of `src`) to the end of `self.nodes`; adds
    /// the containers among them to `todo`. Returns where they start.
    fn copy_block(
        &mut self,
        src: &Tree,
        parent: Rec,
        todo: &mut Vec<usize>,
    ) -> Result<u32, SyntaxError> {
        let start = self.nodes.len();
        for &child in &src.nodes[parent.range()] {
            let mut c = child;
            self.copy_texts(src, &mut c)?;
            if c.is_container() {
                todo.push(self.nodes.len());
            }
            self.nodes.push(c);
        }
        Ok(start as u32)
    }
}

/// A view of one node: `Copy`, borrowing its tree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node<'t> {
    pub kind: NodeKind<'t>,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NodeKind<'t> {
    Scalar {
        value: &'t str,
        quoted: bool,
    },
    Seq(Items<'t>),
    /// Entries in file order.
    Map(Entries<'t>),
}

/// A mapping's entry: key, key position, value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry<'t> {
    pub key: &'t str,
    pub key_pos: Pos,
    pub value: Node<'t>,
}

/// A list's items.
#[derive(Clone, Copy)]
pub struct Items<'t> {
    tree: &'t Tree,
    start: u32,
    len: u32,
}

impl<'t> Items<'t> {
    fn recs(&self) -> &'t [Rec] {
        &self.tree.nodes[self.start as usize..self.start as usize + self.len as usize]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Node<'t>> + 't {
        let tree = self.tree;
        self.recs().iter().map(move |r| tree.view(*r))
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A mapping's entries, in file order.
#[derive(Clone, Copy)]
pub struct Entries<'t> {
    tree: &'t Tree,
    start: u32,
    len: u32,
}

impl<'t> Entries<'t> {
    /// No entries (a missing block decodes like an empty one).
    pub fn empty() -> Entries<'static> {
        static EMPTY: Tree = Tree {
            nodes: Vec::new(),
            text: String::new(),
            root: Rec {
                key_tag: 0,
                pos: Pos { line: 0, column: 0 },
                key_pos: Pos { line: 0, column: 0 },
                start: 0,
                len: 0,
                key_start: 0,
                key_len: 0,
                tag: Tag::Plain,
            },
            dups: Vec::new(),
        };
        Entries { tree: &EMPTY, start: 0, len: 0 }
    }

    fn recs(&self) -> &'t [Rec] {
        &self.tree.nodes[self.start as usize..self.start as usize + self.len as usize]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Entry<'t>> + 't {
        let tree = self.tree;
        self.recs().iter().map(move |r| tree.entry(*r))
    }

    /// The first entry with this key.
    pub fn get(&self, key: &str) -> Option<Entry<'t>> {
        let tree = self.tree;
        let tag = key_tag(key);
        self.recs()
            .iter()
            .find(|r| r.key_tag == tag && (key.len() < 8 || tree.str(r.key_range()) == key))
            .map(|r| tree.entry(*r))
    }

    /// The entries whose key is not one of `known`, in order. Compares tags first (see
    /// [`key_tag`]) and builds no view of a good entry: this runs for every mapping of every
    /// monitor. (Keys given twice are noted when the tree is built.)
    pub fn unknown_keys<'k>(
        &self,
        known: &'k [&'k str],
    ) -> impl Iterator<Item = Entry<'t>> + use<'t, 'k> {
        let tree = self.tree;
        let recs = self.recs();
        // The known keys' tags, once per mapping rather than once per entry.
        let mut known_tags = [0u64; KNOWN_TAGS];
        for (t, k) in known_tags.iter_mut().zip(known) {
            *t = key_tag(k);
        }
        recs.iter().filter_map(move |r| {
            let key = tree.str(r.key_range());
            let is_known = known.iter().enumerate().any(|(j, k)| {
                let tag = known_tags.get(j).copied().unwrap_or_else(|| key_tag(k));
                tag == r.key_tag && (key.len() < 8 || *k == key)
            });
            (!is_known).then(|| tree.entry(*r))
        })
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Items<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Items<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl PartialEq for Entries<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<'t> Node<'t> {
    /// The tree this node is in (`None` for a scalar, which has no mapping in it): for the
    /// duplicate keys noted while it was built.
    pub fn tree(&self) -> Option<&'t Tree> {
        match self.kind {
            NodeKind::Map(e) => Some(e.tree),
            NodeKind::Seq(i) => Some(i.tree),
            NodeKind::Scalar { .. } => None,
        }
    }

    /// A YAML null (`~`, `null`, empty) or JSON `null`: treated as "not given".
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Scalar { value, quoted: false }
            if value.len() <= 4 && (value.is_empty() || value == "~" || value == "null" || value == "Null" || value == "NULL"))
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn scalar(&self) -> Option<&'t str> {
        match self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<Entries<'t>> {
        match self.kind {
            NodeKind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<Entry<'t>> {
        self.entries()?.get(key)
    }

    /// Appends to `out` an encoding of this subtree (keys, texts, quoting, shape; not
    /// positions) such that two subtrees encode alike exactly when they are alike: a cache key
    /// for blocks that thousands of monitors repeat. `stack` is scratch (reused by the caller).
    /// False, with `out` partly written, when a scalar holds a `$` (values that may expand an
    /// environment variable are not cached).
    pub fn encode(&self, stack: &mut Vec<(u32, u32)>, out: &mut Vec<u8>) -> bool {
        stack.clear();
        let tree = match self.kind {
            NodeKind::Scalar { value, quoted } => {
                out.push(if quoted { 1 } else { 0 });
                put_text(out, value);
                return !value.contains('$');
            }
            NodeKind::Seq(items) => {
                out.push(2);
                stack.push((items.start, items.len));
                items.tree
            }
            NodeKind::Map(entries) => {
                out.push(3);
                stack.push((entries.start, entries.len));
                entries.tree
            }
        };
        // Each children block is written whole (a count, then per child its key, kind and
        // text or count); blocks of nested containers follow in a fixed order, so the bytes
        // read back into exactly one tree.
        while let Some((start, len)) = stack.pop() {
            out.extend_from_slice(&len.to_le_bytes());
            for r in &tree.nodes[start as usize..start as usize + len as usize] {
                put_text(out, tree.str(r.key_range()));
                match r.tag {
                    Tag::Plain | Tag::Quoted => {
                        let value = tree.str(r.range());
                        if value.contains('$') {
                            return false;
                        }
                        out.push(if r.tag == Tag::Quoted { 1 } else { 0 });
                        put_text(out, value);
                    }
                    Tag::Seq | Tag::Map => {
                        out.push(if r.tag == Tag::Seq { 2 } else { 3 });
                        stack.push((r.start, r.len));
                    }
                }
            }
        }
        true
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Anchors seen so far (YAML `&name`), by the parser's anchor id, for `*name` aliases: copies
/// of the anchored nodes, which outlive the block they were defined in. One per load, so it
/// also keeps the file's alias budget (see [`ALIAS_BUDGET_BASE_NODES`]).
#[derive(Default)]
pub struct Anchors {
    tree: Tree,
    /// Anchor id -> the node's record in `tree` (`None`: too big for an alias to use, so not
    /// copied) and its node count.
    roots: HashMap<usize, (Option<Rec>, usize)>,
    /// Nodes written in the file so far (every scalar, alias and container read).
    written: usize,
    /// Nodes produced by aliases so far.
    expanded: usize,
}

impl Anchors {
    fn remember(&mut self, id: usize, src: &Tree, rec: Rec) -> Result<(), SyntaxError> {
        if self.roots.len() >= MAX_ANCHORS || self.tree.nodes.len() >= MAX_ANCHORED_NODES {
            return Ok(());
        }
        let size = src.subtree_nodes(rec, MAX_ALIAS_NODES);
        if size > MAX_ALIAS_NODES {
            // Remembered by size only: an alias to it is refused, so a copy would be waste.
            self.roots.insert(id, (None, size));
            return Ok(());
        }
        let (copy, _) = self.tree.copy_from(src, rec)?;
        self.roots.insert(id, (Some(copy), size));
        Ok(())
    }

    /// The budget left for alias expansion in this file.
    fn alias_budget(&self) -> usize {
        ALIAS_BUDGET_BASE_NODES
            .saturating_add(self.written.saturating_mul(ALIAS_BUDGET_PER_NODE))
            .saturating_sub(self.expanded)
    }

    /// Nodes aliases have produced in this load so far.
    pub fn expanded_nodes(&self) -> usize {
        self.expanded
    }
}

/// A container being built: where its children start in `Arena::pending`.
struct Open {
    tag: Tag,
    pos: Pos,
    anchor: usize,
    first: usize,
    /// In a mapping: the key read, waiting for its value (text range and position).
    key: Option<(u32, u32, Pos)>,
    /// In a mapping: a `<<` key was seen (merge keys to apply when it closes).
    merge: bool,
}

/// Reusable storage for building trees one after another (one per monitor): cleared, not
/// freed, between trees.
#[derive(Default)]
pub struct Arena {
    tree: Tree,
    /// Finished children of the open containers, innermost last.
    pending: Vec<Rec>,
    open: Vec<Open>,
    /// Scratch for merge keys.
    merged: Vec<Rec>,
}

/// Build the node that starts with `first` (already read from `src`) into a new tree.
pub fn build(
    src: &mut dyn EventSource,
    first: (ParseEvent, Pos),
    anchors: &mut Anchors,
) -> Result<Tree, SyntaxError> {
    let mut arena = Arena::default();
    arena.build_root(src, first, anchors)?;
    Ok(arena.tree)
}

impl Arena {
    /// Build the node that starts with `first` (already read from `src`), reusing this
    /// arena's storage; the tree lives until the next `build`.
    pub fn build(
        &mut self,
        src: &mut dyn EventSource,
        first: (ParseEvent, Pos),
        anchors: &mut Anchors,
    ) -> Result<Node<'_>, SyntaxError> {
        self.build_root(src, first, anchors)?;
        Ok(self.tree.root())
    }

    fn build_root(
        &mut self,
        src: &mut dyn EventSource,
        first: (ParseEvent, Pos),
        anchors: &mut Anchors,
    ) -> Result<(), SyntaxError> {
        self.tree.clear();
        self.pending.clear();
        self.open.clear();
        let mut count = 0usize;
        let mut ev = first;
        loop {
            let (event, pos) = ev;
            if !matches!(event, ParseEvent::SeqEnd | ParseEvent::MapEnd | ParseEvent::End) {
                anchors.written += 1;
            }
            let completed: Option<(Rec, usize)> = match event {
                ParseEvent::Scalar { quoted, anchor } => {
                    let (start, len) = self.tree.push_scalar(src, pos)?;
                    let tag = if quoted { Tag::Quoted } else { Tag::Plain };
                    Some((Rec::scalar(tag, start, len, pos), anchor))
                }
                ParseEvent::Alias(id) => match anchors.roots.get(&id) {
                    Some(&(rec, size)) => {
                        // Every bound is checked before copying, so an alias bomb stops
                        // before it grows: the alias's own, the file's budget, and the block's
                        // (counted like that many nodes written out, plus one, below).
                        let Some(rec) = rec else { return Err(alias_too_big(pos)) };
                        if size > anchors.alias_budget() {
                            return Err(alias_budget_spent(pos, anchors));
                        }
                        anchors.expanded += size;
                        count += size;
                        if count + 1 > MAX_BLOCK_NODES {
                            return Err(too_many(pos));
                        }
                        let (copy, _) = self.tree.copy_from(&anchors.tree, rec)?;
                        Some((copy, 0))
                    }
                    None => {
                        return Err(SyntaxError { pos, message: format!(
                            "alias to an unknown anchor (or one past the first {MAX_ANCHORS} anchors, which are all that is remembered)"
                        ) })
                    }
                },
                ParseEvent::SeqStart { anchor } | ParseEvent::MapStart { anchor } => {
                    if self.open.len() >= MAX_NODE_DEPTH {
                        return Err(too_deep(pos));
                    }
                    let tag = if matches!(event, ParseEvent::SeqStart { .. }) { Tag::Seq } else { Tag::Map };
                    self.open.push(Open { tag, pos, anchor, first: self.pending.len(), key: None, merge: false });
                    None
                }
                ParseEvent::SeqEnd | ParseEvent::MapEnd => {
                    let want = if event == ParseEvent::SeqEnd { Tag::Seq } else { Tag::Map };
                    match self.open.pop() {
                        Some(o) if o.tag == want && o.key.is_none() => {
                            if o.tag == Tag::Map && self.pending.len() - o.first > 1 {
                                let (tree, pending) = (&mut self.tree, &self.pending);
                                tree.note_duplicates(&pending[o.first..]);
                            }
                            if o.merge {
                                self.apply_merge_keys(o.first);
                            }
                            let start = self.tree.nodes.len();
                            self.tree.nodes.extend_from_slice(&self.pending[o.first..]);
                            let len = self.pending.len() - o.first;
                            self.pending.truncate(o.first);
                            let rec = Rec {

                                key_tag: 0,
                                pos: o.pos,
                                key_pos: Pos::default(),
                                start: start as u32,
                                len: len as u32,
                                key_start: 0,
                                key_len: 0,
                                tag: o.tag,
                            };
                            Some((rec, o.anchor))
                        }
                        _ => {
                            let what = if want == Tag::Seq { "list" } else { "mapping" };
                            return Err(SyntaxError { pos, message: format!("unexpected end of {what}") });
                        }
                    }
                }
                ParseEvent::End => {
                    return Err(SyntaxError { pos, message: "unexpected end of input".into() });
                }
            };
            if let Some((mut rec, anchor)) = completed {
                count += 1;
                if count > MAX_BLOCK_NODES {
                    return Err(too_many(pos));
                }
                if anchor != 0 {
                    anchors.remember(anchor, &self.tree, rec)?;
                }
                match self.open.last_mut() {
                    None => {
                        self.tree.root = rec;
                        return Ok(());
                    }
                    Some(o) if o.tag == Tag::Seq => self.pending.push(rec),
                    Some(o) => match o.key.take() {
                        None => {
                            if rec.is_container() {
                                return Err(SyntaxError {
                                    pos: rec.pos,
                                    message:
                                        "mapping keys must be plain strings, not lists or mappings"
                                            .into(),
                                });
                            }
                            if self.tree.text.as_bytes().get(rec.range()) == Some(b"<<") {
                                o.merge = true;
                            }
                            o.key = Some((rec.start, rec.len, rec.pos));
                        }
                        Some((key_start, key_len, key_pos)) => {
                            rec.key_start = key_start;
                            rec.key_len = key_len;
                            rec.key_tag = tag_of(
                                self.tree.text.as_bytes().get(rec.key_range()).unwrap_or_default(),
                            );
                            rec.key_pos = key_pos;
                            self.pending.push(rec);
                        }
                    },
                }
            }
            ev = src.next_event()?;
        }
    }

    /// YAML merge keys (`<<: *defaults`, or `<<: [*a, *b]`), which Go's YAML library applies
    /// and Go CPRA manifests use to share blocks: the merged mappings' entries are added where
    /// the mapping does not set them itself; among several merged mappings, the first wins. A
    /// `<<` whose value is not a mapping is left in place (the decoder reports it as unknown).
    /// Works on the entries `pending[first..]` of the mapping being closed.
    fn apply_merge_keys(&mut self, first: usize) {
        let tree = &self.tree;
        let key = |r: &Rec| tree.str(r.key_range());
        let own = &mut self.merged;
        own.clear();
        let mut sources: Vec<std::ops::Range<usize>> = Vec::new();
        for r in &self.pending[first..] {
            if key(r) != "<<" {
                own.push(*r);
                continue;
            }
            match r.tag {
                Tag::Map => sources.push(r.range()),
                Tag::Seq if tree.nodes[r.range()].iter().all(|i| i.tag == Tag::Map) => {
                    sources.extend(tree.nodes[r.range()].iter().map(Rec::range));
                }
                _ => own.push(*r),
            }
        }
        let merged: usize = sources.iter().map(|r| r.len()).sum();
        if own.len() + merged <= PAIRWISE_KEYS {
            for range in sources {
                for e in &tree.nodes[range] {
                    if !own.iter().any(|o| key(o) == key(e)) {
                        own.push(*e);
                    }
                }
            }
        } else {
            // A set, not pair by pair: merging a mapping of 60,000 keys cost 1.8 billion
            // compares that way.
            let mut present: std::collections::HashSet<&str> = own.iter().map(key).collect();
            for range in sources {
                for e in &tree.nodes[range] {
                    if present.insert(key(e)) {
                        own.push(*e);
                    }
                }
            }
        }
        self.pending.truncate(first);
        self.pending.extend_from_slice(own);
    }
}

/// Known-field tags kept on the stack by `Entries::unknown_keys`: more than the longest field
/// list (11); a longer list still works, computing the rest per entry.
const KNOWN_TAGS: usize = 16;

/// A word that tells keys apart without reading their text: up to the first 7 bytes and the
/// length (capped at 255). Two keys shorter than 8 bytes are equal exactly when their tags are;
/// longer keys with equal tags are then compared in full.
pub fn key_tag(key: &str) -> u64 {
    tag_of(key.as_bytes())
}

#[inline]
fn tag_of(b: &[u8]) -> u64 {
    // Fixed-size loads (a copy of variable length is a `memcpy` call, a byte loop a dozen
    // instructions per byte): 8 bytes masked to 7, or two overlapping 4-byte halves.
    let n = b.len();
    let text = if n >= 8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[..8]);
        u64::from_le_bytes(w) & 0x00FF_FFFF_FFFF_FFFF
    } else if n >= 4 {
        let (mut lo, mut hi) = ([0u8; 4], [0u8; 4]);
        lo.copy_from_slice(&b[..4]);
        hi.copy_from_slice(&b[n - 4..]);
        u64::from(u32::from_le_bytes(lo)) | (u64::from(u32::from_le_bytes(hi)) << (8 * (n - 4)))
    } else {
        b.iter().enumerate().fold(0, |w, (i, &c)| w | (u64::from(c) << (8 * i)))
    };
    text | ((n.min(255) as u64) << 56)
}

fn too_deep(pos: Pos) -> SyntaxError {
    SyntaxError { pos, message: format!("nesting deeper than {MAX_NODE_DEPTH} levels") }
}

fn too_many(pos: Pos) -> SyntaxError {
    SyntaxError { pos, message: format!("block has more than {MAX_BLOCK_NODES} values") }
}

fn alias_too_big(pos: Pos) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!(
            "alias to an anchored block of more than {MAX_ALIAS_NODES} values, the most one \
             alias may stand for"
        ),
    }
}

fn alias_budget_spent(pos: Pos, anchors: &Anchors) -> SyntaxError {
    SyntaxError {
        pos,
        message: format!(
            "aliases have expanded to {} values, and this one would pass the file's alias \
             budget ({ALIAS_BUDGET_BASE_NODES} values plus {ALIAS_BUDGET_PER_NODE} per value \
             written, {} so far): an alias bomb?",
            anchors.expanded, anchors.written
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::JsonReader;
    use super::super::yaml::YamlReader;
    use super::*;

    fn parse(src: &str) -> Result<Tree, SyntaxError> {
        let mut r = YamlReader::new(std::io::Cursor::new(src.as_bytes().to_vec()));
        let first = r.next_event()?;
        build(&mut r, first, &mut Anchors::default())
    }

    #[test]
    fn builds_tree_with_aliases() {
        let t = parse("a: &x {b: 1}\nc: *x\nd: [1, 2]\n").unwrap();
        let n = t.root();
        let c = n.get("c").unwrap();
        assert_eq!(c.value.get("b").unwrap().value.scalar(), Some("1"));
        assert_eq!(
            c.value.pos,
            n.get("a").unwrap().value.pos,
            "an alias keeps the anchor's position"
        );
        assert_eq!(n.get("d").unwrap().key_pos, Pos { line: 3, column: 1 });
        let NodeKind::Seq(d) = n.get("d").unwrap().value.kind else { panic!("not a list") };
        let items: Vec<_> = d.iter().map(|i| i.scalar()).collect();
        assert_eq!(items, [Some("1"), Some("2")]);
    }

    #[test]
    fn merge_keys() {
        let t = parse(
            "d: &d {a: 1, b: 2}\ne: &e {c: 3, a: 9}\nm:\n  <<: [*d, *e]\n  b: 5\nx: {<<: 1}\n",
        )
        .unwrap();
        let n = t.root();
        let m = &n.get("m").unwrap().value;
        assert_eq!(m.get("a").unwrap().value.scalar(), Some("1"));
        assert_eq!(m.get("b").unwrap().value.scalar(), Some("5"));
        assert_eq!(m.get("c").unwrap().value.scalar(), Some("3"));
        assert!(m.get("<<").is_none());
        let keys: Vec<&str> = m.entries().unwrap().iter().map(|e| e.key).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert!(n.get("x").unwrap().value.get("<<").is_some());
    }

    /// Builds each top-level value of `src` (a mapping) as its own block, as the loader does,
    /// sharing `anchors`: the first error, if any.
    fn blocks(src: &str, anchors: &mut Anchors) -> Result<usize, SyntaxError> {
        let mut r = YamlReader::new(std::io::Cursor::new(src.as_bytes().to_vec()));
        assert_eq!(r.next_event()?.0, ParseEvent::MapStart { anchor: 0 });
        let mut built = 0;
        loop {
            match r.next_event()?.0 {
                ParseEvent::MapEnd => return Ok(built),
                ParseEvent::Scalar { .. } => {}
                other => panic!("{other:?}"),
            }
            let first = r.next_event()?;
            Arena::default().build(&mut r, first, anchors)?;
            built += 1;
        }
    }

    /// A YAML list of `items` plain scalars: `items + 1` nodes.
    fn list(items: usize) -> String {
        format!("[{}]", vec!["x"; items].join(", "))
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            src.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let e = parse(&src).unwrap_err();
        // a4 holds 111,111 nodes: a5's first alias to it passes the per-alias bound.
        assert_eq!(e.pos, Pos { line: 6, column: 10 }, "{}", e.message);
        assert_eq!(
            e.message,
            "alias to an anchored block of more than 65536 values, the most one alias may \
             stand for"
        );
    }

    /// An alias may stand for exactly `MAX_ALIAS_NODES` nodes, not one more.
    #[test]
    fn one_alias_is_bounded_at_max_alias_nodes() {
        let at = format!("a: &a {}\nb: *a\n", list(MAX_ALIAS_NODES - 1));
        let t = parse(&at).unwrap();
        let NodeKind::Seq(b) = t.root().get("b").unwrap().value.kind else { panic!("b") };
        assert_eq!(b.len() + 1, MAX_ALIAS_NODES);
        let past = format!("a: &a {}\nb: *a\n", list(MAX_ALIAS_NODES));
        let e = parse(&past).unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 4 });
        assert!(e.message.contains(&format!("block of more than {MAX_ALIAS_NODES} values")));
    }

    /// The file's alias budget: an alias that fits what is left is expanded, one that passes
    /// it by a node is refused, naming the budget.
    #[test]
    fn the_files_alias_budget_is_exact() {
        for (over, ok) in [(0, true), (1, false)] {
            let mut anchors = Anchors::default();
            let mut r = YamlReader::new(std::io::Cursor::new(b"a: &a [x, x, x]\nb: *a\n".to_vec()));
            let mut next = || r.next_event().unwrap();
            assert_eq!(next().0, ParseEvent::MapStart { anchor: 0 });
            next();
            let first = r.next_event().unwrap();
            Arena::default().build(&mut r, first, &mut anchors).unwrap();
            // Spends the budget down to what `*a` (4 nodes) needs, plus `over`: the alias is
            // itself a node written, which adds its 64 before the check.
            anchors.expanded =
                ALIAS_BUDGET_BASE_NODES + ALIAS_BUDGET_PER_NODE * (anchors.written + 1) - 4 + over;
            r.next_event().unwrap();
            let first = r.next_event().unwrap();
            let got = Arena::default().build(&mut r, first, &mut anchors).map(|_| ());
            assert_eq!(got.is_ok(), ok, "{got:?}");
            if let Err(e) = got {
                assert_eq!(e.pos, Pos { line: 2, column: 4 });
                assert!(
                    e.message.contains(
                        "pass the file's alias budget (1048576 values plus 64 per value written"
                    ),
                    "{}",
                    e.message
                );
            }
        }
    }

    /// Billion laughs with each alias under its own bound: the file's budget stops it, after
    /// at most the budget's nodes (not the 1.1 billion written out).
    #[test]
    fn many_aliases_stop_at_the_files_budget() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..4 {
            let p = i - 1;
            src.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{p}"); 10].join(", ")));
        }
        // 100,000 blocks of one alias to a3's 11,111 nodes each.
        for i in 0..100_000 {
            src.push_str(&format!("m{i}: *a3\n"));
        }
        let mut anchors = Anchors::default();
        let e = blocks(&src, &mut anchors).unwrap_err();
        assert!(e.message.contains("file's alias budget"), "{}", e.message);
        let budget = ALIAS_BUDGET_BASE_NODES + ALIAS_BUDGET_PER_NODE * anchors.written;
        assert!(anchors.expanded_nodes() <= budget);
        assert!(anchors.expanded_nodes() + 11_111 > budget, "stopped only at the budget");
        assert!(e.pos.line < 200, "stopped early in the file: {:?}", e.pos);
    }

    /// Merging mappings too long to compare pair by pair gives what pairwise merging gives:
    /// own keys win, then the first merged mapping's.
    #[test]
    fn long_merges_keep_the_merge_rules() {
        let map = |from: usize, to: usize, v: &str| {
            let entries: Vec<String> = (from..to).map(|k| format!("k{k}: {v}")).collect();
            format!("{{{}}}", entries.join(", "))
        };
        let src = format!(
            "d: &d {}\ne: &e {}\nm:\n  <<: [*d, *e]\n  k0: own\n",
            map(0, 40, "d"),
            map(20, 60, "e")
        );
        let t = parse(&src).unwrap();
        let m = t.root().get("m").unwrap().value;
        assert_eq!(m.entries().unwrap().len(), 60);
        let value = |k: &str| m.get(k).unwrap().value.scalar().unwrap();
        assert_eq!((value("k0"), value("k1"), value("k25"), value("k59")), ("own", "d", "d", "e"));
        let keys: Vec<&str> = m.entries().unwrap().iter().map(|e| e.key).take(3).collect();
        assert_eq!(keys, ["k0", "k1", "k2"]);
    }

    /// One arena reused block after block gives the same trees as a fresh tree per block, and
    /// anchors outlive the block (and the arena reset) they were defined in.
    #[test]
    fn key_tags_hold_short_keys_whole() {
        let keys =
            ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "bbcdefg", "abcdefh"];
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(key_tag(a) == key_tag(b), i == j, "{a:?} {b:?}");
            }
        }
        assert_eq!(
            key_tag("abcdefgh"),
            key_tag("abcdefgX"),
            "8+ bytes: the first 7 and the length"
        );
        assert_ne!(key_tag("abcdefgh"), key_tag("abcdefg"));
    }

    #[test]
    fn key_tags_tell_keys_apart() {
        let t = parse("abcdefg: 1\nabcdefgh: 2\nabcdefgi: 3\n\"\": 4\nabc: 5\nabcdefgh: 6\nx: 7\n")
            .unwrap();
        let m = t.root();
        for (k, v) in
            [("abcdefg", "1"), ("abcdefgh", "2"), ("abcdefgi", "3"), ("", "4"), ("abc", "5")]
        {
            assert_eq!(m.get(k).unwrap().value.scalar(), Some(v), "{k}");
        }
        assert!(m.get("abcdef").is_none());
        assert!(m.get("abcdefgj").is_none());
        let unknown: Vec<&str> =
            m.entries().unwrap().unknown_keys(&["abcdefgh", "x", ""]).map(|e| e.key).collect();
        assert_eq!(unknown, ["abcdefg", "abcdefgi", "abc"]);
        // The repeated long key, told from its look-alikes by its text, is noted at build.
        let dups: Vec<(&str, u32, u32)> =
            t.duplicate_keys().map(|d| (d.key, d.pos.line, d.first.line)).collect();
        assert_eq!(dups, [("abcdefgh", 6, 2)]);
    }

    #[test]
    fn duplicate_keys_are_noted_at_every_level_and_in_long_mappings() {
        let t = parse(
            "a: {b: {c: 1, c: 2}}
d: [{e: 1, f: 2, e: 3}]
a: 4
<<: {g: 1}
<<: {h: 1}
",
        )
        .unwrap();
        let dups: Vec<(&str, u32, u32)> =
            t.duplicate_keys().map(|d| (d.key, d.pos.line, d.pos.column)).collect();
        assert_eq!(dups, [("c", 1, 15), ("e", 2, 18), ("a", 3, 1)]);
        let long: String = (0..100).map(|i| format!("k{i}: 1\n")).collect::<String>() + "k7: 2\n";
        let t = parse(&long).unwrap();
        let dups: Vec<(&str, u32, u32)> =
            t.duplicate_keys().map(|d| (d.key, d.pos.line, d.first.line)).collect();
        assert_eq!(dups, [("k7", 101, 8)]);
    }

    #[test]
    fn encodings_are_equal_exactly_for_equal_subtrees() {
        let t = parse(
            "a: {x: [1, {y: 2}], z: '3'}\nb: {x: [1, {y: 2}], z: '3'}\nc: {x: [1, {y: 2}], z: 3}\n\
             d: {x: [1, {y: 2}, {}], z: '3'}\ne: {x: [{y: 2}, 1], z: '3'}\nf: {x: [1, {y: 2}], w: '3'}\n\
             g: {x: [1, {y: 2}], z: '${A}'}\nh: {x: [1, {y: 2}], z: '3', v: ''}\n",
        )
        .unwrap();
        let root = t.root();
        let mut stack = Vec::new();
        let enc = |k: &str, stack: &mut Vec<(u32, u32)>| {
            let mut out = Vec::new();
            let ok = root.get(k).unwrap().value.encode(stack, &mut out);
            (ok, out)
        };
        let a = enc("a", &mut stack);
        assert!(a.0);
        assert_eq!(a, enc("b", &mut stack));
        for other in ["c", "d", "e", "f", "h"] {
            let o = enc(other, &mut stack);
            assert!(o.0);
            assert_ne!(a.1, o.1, "{other}");
        }
        assert!(!enc("g", &mut stack).0);
    }

    #[test]
    fn arena_reuse_gives_the_same_trees() {
        let src = "- {name: a, tags: [x, y], deep: {k: [1, {z: 2}]}}\n\
                   - &big {name: bb, codes: {red: {notify: log}}, list: [[], {}, ~, '']}\n\
                   - q\n\
                   - {name: c, more: *big, <<: *big}\n\
                   - []\n";
        let fresh: Vec<Tree> = {
            let mut r = YamlReader::new(std::io::Cursor::new(src.as_bytes().to_vec()));
            let mut anchors = Anchors::default();
            assert!(matches!(r.next_event().unwrap().0, ParseEvent::SeqStart { .. }));
            let mut out = Vec::new();
            loop {
                let ev = r.next_event().unwrap();
                if ev.0 == ParseEvent::SeqEnd {
                    break out;
                }
                out.push(build(&mut r, ev, &mut anchors).unwrap());
            }
        };
        let mut r = YamlReader::new(std::io::Cursor::new(src.as_bytes().to_vec()));
        let mut anchors = Anchors::default();
        let mut arena = Arena::default();
        r.next_event().unwrap();
        for want in &fresh {
            let ev = r.next_event().unwrap();
            let got = arena.build(&mut r, ev, &mut anchors).unwrap();
            assert_eq!(got, want.root());
        }
        let c = fresh[3].root();
        assert_eq!(c.get("more").unwrap().value, fresh[1].root());
        assert_eq!(c.get("codes").unwrap().value, fresh[1].root().get("codes").unwrap().value);
        assert_eq!(c.get("name").unwrap().value.scalar(), Some("c"));
    }

    #[test]
    fn json_and_yaml_give_the_same_tree_shape() {
        let json = r#"{"a": [1, "x", {"b": null}], "c": {"d": true}}"#;
        let mut r = JsonReader::new(json.as_bytes());
        let first = r.next_event().unwrap();
        let j = build(&mut r, first, &mut Anchors::default()).unwrap();
        let y = parse("a: [1, \"x\", {b: null}]\nc: {d: true}\n").unwrap();
        let strip = |n: Node| format!("{:?}", n).replace(|c: char| c.is_ascii_digit(), "");
        assert_eq!(strip(j.root()), strip(y.root()));
        assert!(j.root().get("a").unwrap().value.type_name() == "a list");
    }
}
