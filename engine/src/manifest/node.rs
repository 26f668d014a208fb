//! A small tree for one monitor (or one top-level block), with a position on every node.
//!
//! The loader builds one `Node` per monitor from the event stream, decodes it and drops it,
//! so only one monitor's tree exists at a time. Built iteratively (no recursion) with bounded
//! depth and size, so hostile input cannot blow the stack or the heap.

use std::collections::HashMap;

use super::event::{Event, EventSource, Pos, SyntaxError};

/// Deepest nesting inside one block. A monitor needs about 6 levels; past this: an error.
pub const MAX_NODE_DEPTH: usize = 64;

/// Most nodes in one block (one monitor, the endpoints block ...). A large monitor has a few
/// hundred; the bound stops YAML alias bombs ("billion laughs") and absurd inputs. Past it:
/// an error naming the block.
pub const MAX_BLOCK_NODES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Scalar {
        value: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order: key, key position, value.
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
}

impl Node {
    /// A YAML null (`~`, `null`, empty) or JSON `null`: treated as "not given".
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, quoted: false }
            if value.is_empty() || value == "~" || value == "null" || value == "Null" || value == "NULL")
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }
}

/// Anchors seen so far (YAML `&name`), by the parser's anchor id, for `*name` aliases.
#[derive(Default)]
pub struct Anchors {
    nodes: HashMap<usize, Node>,
}

/// Most anchors remembered: each holds a copy of its node. Past it, new anchors are not
/// remembered (a file with an anchor on every one of a million monitors still loads), and an
/// alias to one of them is an error that names this bound.
pub const MAX_ANCHORS: usize = 4096;

enum Open {
    Seq { items: Vec<Node>, pos: Pos, anchor: usize },
    Map { entries: Vec<Entry>, pending_key: Option<(String, Pos)>, pos: Pos, anchor: usize },
}

/// Build the node that starts with `first` (already read from `src`).
pub fn build(
    src: &mut dyn EventSource,
    first: (Event, Pos),
    anchors: &mut Anchors,
) -> Result<Node, SyntaxError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut count = 0usize;
    let mut ev = first;
    loop {
        let (event, pos) = ev;
        let completed: Option<(Node, usize)> = match event {
            Event::Scalar { quoted, anchor } => {
                let value = src.scalar().to_owned();
                Some((Node { kind: NodeKind::Scalar { value, quoted }, pos }, anchor))
            }
            Event::Alias(id) => match anchors.nodes.get(&id) {
                Some(n) => {
                    count += count_nodes(n);
                    Some((n.clone(), 0))
                }
                None => {
                    return Err(SyntaxError { pos, message: format!(
                            "alias to an unknown anchor (or one past the first {MAX_ANCHORS} anchors, which are all that is remembered)"
                        ) })
                }
            },
            Event::SeqStart { anchor } => {
                if stack.len() >= MAX_NODE_DEPTH {
                    return Err(too_deep(pos));
                }
                stack.push(Open::Seq { items: Vec::with_capacity(4), pos, anchor });
                None
            }
            Event::MapStart { anchor } => {
                if stack.len() >= MAX_NODE_DEPTH {
                    return Err(too_deep(pos));
                }
                stack.push(Open::Map {
                    entries: Vec::with_capacity(8),
                    pending_key: None,
                    pos,
                    anchor,
                });
                None
            }
            Event::SeqEnd => match stack.pop() {
                Some(Open::Seq { items, pos, anchor }) => {
                    Some((Node { kind: NodeKind::Seq(items), pos }, anchor))
                }
                _ => return Err(SyntaxError { pos, message: "unexpected end of list".into() }),
            },
            Event::MapEnd => match stack.pop() {
                Some(Open::Map { entries, pending_key: None, pos, anchor }) => {
                    Some((Node { kind: NodeKind::Map(apply_merge_keys(entries)), pos }, anchor))
                }
                _ => return Err(SyntaxError { pos, message: "unexpected end of mapping".into() }),
            },
            Event::End => {
                return Err(SyntaxError { pos, message: "unexpected end of input".into() });
            }
        };
        if let Some((node, anchor)) = completed {
            count += 1;
            if count > MAX_BLOCK_NODES {
                return Err(SyntaxError {
                    pos,
                    message: format!("block has more than {MAX_BLOCK_NODES} values (alias bomb?)"),
                });
            }
            if anchor != 0 && anchors.nodes.len() < MAX_ANCHORS {
                anchors.nodes.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => return Ok(node),
                Some(Open::Seq { items, .. }) => items.push(node),
                Some(Open::Map { entries, pending_key, .. }) => match pending_key.take() {
                    None => match node.kind {
                        NodeKind::Scalar { value, .. } => *pending_key = Some((value, node.pos)),
                        _ => {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message:
                                    "mapping keys must be plain strings, not lists or mappings"
                                        .into(),
                            })
                        }
                    },
                    Some((key, key_pos)) => entries.push(Entry { key, key_pos, value: node }),
                },
            }
        }
        ev = src.next_event()?;
    }
}

/// YAML merge keys (`<<: *defaults`, or `<<: [*a, *b]`), which Go's YAML library applies and
/// Go CPRA manifests use to share blocks: the merged mappings' entries are added where the
/// mapping does not set them itself; among several merged mappings, the first wins. A `<<`
/// whose value is not a mapping is left in place (the decoder reports it as unknown).
fn apply_merge_keys(entries: Vec<Entry>) -> Vec<Entry> {
    if !entries.iter().any(|e| e.key == "<<") {
        return entries;
    }
    let mut own = Vec::with_capacity(entries.len());
    let mut merged: Vec<Vec<Entry>> = Vec::new();
    for e in entries {
        if e.key != "<<" {
            own.push(e);
            continue;
        }
        match e.value.kind {
            NodeKind::Map(m) => merged.push(m),
            NodeKind::Seq(items) if items.iter().all(|i| matches!(i.kind, NodeKind::Map(_))) => {
                for item in items {
                    if let NodeKind::Map(m) = item.kind {
                        merged.push(m);
                    }
                }
            }
            kind => own.push(Entry {
                key: e.key,
                key_pos: e.key_pos,
                value: Node { kind, pos: e.value.pos },
            }),
        }
    }
    for m in merged {
        for e in m {
            if !own.iter().any(|o| o.key == e.key) {
                own.push(e);
            }
        }
    }
    own
}

fn too_deep(pos: Pos) -> SyntaxError {
    SyntaxError { pos, message: format!("nesting deeper than {MAX_NODE_DEPTH} levels") }
}

fn count_nodes(n: &Node) -> usize {
    let mut total = 0;
    let mut todo = vec![n];
    while let Some(n) = todo.pop() {
        total += 1;
        match &n.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Seq(items) => todo.extend(items.iter()),
            NodeKind::Map(entries) => todo.extend(entries.iter().map(|e| &e.value)),
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::super::yaml::YamlReader;
    use super::*;

    fn parse(src: &str) -> Result<Node, SyntaxError> {
        let mut r = YamlReader::new(std::io::Cursor::new(src.as_bytes().to_vec()));
        let first = r.next_event()?;
        build(&mut r, first, &mut Anchors::default())
    }

    #[test]
    fn builds_tree_with_aliases() {
        let n = parse("a: &x {b: 1}\nc: *x\nd: [1, 2]\n").unwrap();
        let c = n.get("c").unwrap();
        assert_eq!(c.value.get("b").unwrap().value.scalar(), Some("1"));
        assert_eq!(n.get("d").unwrap().key_pos, Pos { line: 3, column: 1 });
    }

    #[test]
    fn merge_keys() {
        let n = parse(
            "d: &d {a: 1, b: 2}\ne: &e {c: 3, a: 9}\nm:\n  <<: [*d, *e]\n  b: 5\nx: {<<: 1}\n",
        )
        .unwrap();
        let m = &n.get("m").unwrap().value;
        assert_eq!(m.get("a").unwrap().value.scalar(), Some("1"));
        assert_eq!(m.get("b").unwrap().value.scalar(), Some("5"));
        assert_eq!(m.get("c").unwrap().value.scalar(), Some("3"));
        assert!(m.get("<<").is_none());
        assert!(n.get("x").unwrap().value.get("<<").is_some());
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            src.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }
}
