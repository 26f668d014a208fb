//! Questions the control plane asks a shard about its monitors, and the shard's answers.
//!
//! What it is for: the one way the API thread learns a monitor's state without touching it.
//! Each shard has a bounded ring (`crossbeam_queue::ArrayQueue`) the API pushes a [`Query`]
//! to; the shard drains it in its background task queue, answers from its own state, and puts
//! the answer in the query's one-slot [`Reply`], which the API reads. A full ring refuses the
//! query at once (the API answers 503), so a flood of API requests never grows a queue or
//! takes a check's time beyond one bounded batch per drain. What it is not for: HTTP or JSON
//! (the API's), or changing a monitor (control requests come later, on the same ring).

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::limits::{API_LIST_MAX_LIMIT, API_QUERY_RING};

/// A monitor's state as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorHealth {
    Up,
    Down,
    Unknown,
    Disabled,
}

impl MonitorHealth {
    pub const fn as_str(self) -> &'static str {
        match self {
            MonitorHealth::Up => "up",
            MonitorHealth::Down => "down",
            MonitorHealth::Unknown => "unknown",
            MonitorHealth::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<MonitorHealth> {
        [MonitorHealth::Up, MonitorHealth::Down, MonitorHealth::Unknown, MonitorHealth::Disabled]
            .into_iter()
            .find(|h| h.as_str() == text)
    }
}

/// Which monitors a list asks for, and from where: monitors are listed in id order, those
/// with an id after `after` (the previous page's last id), at most `limit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub state: Option<MonitorHealth>,
    /// A substring of the monitor's name (case-sensitive).
    pub name_contains: Option<String>,
    /// One of the monitor's `pulse_check.groups`.
    pub group: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

impl ListFilter {
    /// Whether a monitor matches the filter (paging aside).
    pub fn matches(&self, name: &str, groups: &[String], health: MonitorHealth) -> bool {
        self.state.is_none_or(|s| s == health)
            && self.name_contains.as_deref().is_none_or(|q| name.contains(q))
            && self.group.as_deref().is_none_or(|g| groups.iter().any(|x| x == g))
    }

    /// Whether only the state filters (a shard knows its count per state without a scan).
    pub fn by_state_only(&self) -> bool {
        self.name_contains.is_none() && self.group.is_none()
    }
}

/// One monitor in a list: what the shard knows of it now.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorRow {
    pub id: String,
    pub name: String,
    /// The pulse type (`http`, `tcp`, ...).
    pub kind: &'static str,
    pub health: MonitorHealth,
    pub incident_id: Option<String>,
    /// `pulse_check.groups` (interned: shared, not copied).
    pub groups: Arc<Vec<String>>,
    /// The last check: when it ended (Unix ms), its latency and, if it failed, why.
    pub last_check: Option<LastCheck>,
    /// Alerts are held back until then (Unix ms), if silenced.
    pub silenced_until_unix_ms: Option<i64>,
    /// Since when (Unix ms) the monitor has been in `health`: its last change of state in this
    /// run, or the shard's start.
    pub state_since_unix_ms: i64,
}

/// The last check of a monitor, as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LastCheck {
    pub at_unix_ms: i64,
    pub latency_us: u32,
    /// `(kind, message)` when it failed.
    pub failure: Option<(&'static str, String)>,
}

/// One shard's answer to a list: its matching monitors after the cursor, in id order, at
/// most the filter's limit; how many match after the cursor, and in all (paging aside).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorPage {
    pub rows: Vec<MonitorRow>,
    pub after_cursor: u64,
    pub total: u64,
}

/// A change an operator asks of one monitor (`POST /api/v1/monitors/{id}/...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Disable,
    Enable,
    /// Hold alerts back until this Unix ms.
    Silence {
        until_unix_ms: i64,
    },
    Unsilence,
    /// Run a check now (the regular schedule goes on from it).
    CheckNow,
}

/// What the API asks.
#[derive(Debug)]
pub enum Question {
    ListMonitors(ListFilter),
    /// One monitor with its recent results, by id (asked of the shard that owns the id).
    Monitor(String),
    /// A change to one monitor, by id; answered with the monitor as it is after it.
    Control(String, Command),
    /// The shard's incidents: open ones, closed ones or both (`None`); at most the limit,
    /// newest opened first; only the monitor's with this id, if one is given.
    Incidents(Option<bool>, usize, Option<String>),
    /// How many of the shard's monitors are silenced now.
    CountSilenced,
    /// Acknowledge the open incident with this id, by whom.
    Ack {
        incident: String,
        by: String,
    },
}

/// One result of a monitor's recent ones.
#[derive(Clone, Debug, PartialEq)]
pub struct RecentRow {
    pub at_unix_ms: i64,
    pub latency_us: u32,
    /// `(kind, message)` when it failed.
    pub failure: Option<(&'static str, String)>,
}

/// One monitor in full: its row and its recent results, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorDetail {
    pub row: MonitorRow,
    pub recent: Vec<RecentRow>,
}

/// One incident as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentRow {
    pub id: String,
    pub monitor_id: String,
    pub monitor: String,
    pub opened_at_unix_ms: i64,
    pub closed_at_unix_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
}

/// Why a shard did not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such monitor (or incident) on this shard.
    NotFound,
    /// It exists, but the request does not apply (e.g. the incident is closed).
    Conflict(String),
    /// The shard cannot take it now (its scheduling queue is full): try again.
    Busy,
}

/// What a shard answers.
#[derive(Debug)]
pub enum Answer {
    Monitors(MonitorPage),
    Monitor(Result<MonitorDetail, Refused>),
    /// At most the limit asked, newest opened first, and how many matched in all.
    Incidents(Vec<IncidentRow>, usize),
    Incident(Result<IncidentRow, Refused>),
    Count(u64),
}

/// Where a shard puts its answer: one slot, written once by the shard, read by the API.
#[derive(Debug)]
pub struct Reply(ArrayQueue<Answer>);

impl Default for Reply {
    fn default() -> Self {
        Reply(ArrayQueue::new(1))
    }
}

impl Reply {
    pub fn take(&self) -> Option<Answer> {
        self.0.pop()
    }

    fn put(&self, answer: Answer) {
        // One question, one answer: the slot is empty.
        let _ = self.0.push(answer);
    }
}

/// A question and where to answer it.
#[derive(Debug)]
pub struct Query {
    pub question: Question,
    pub reply: Arc<Reply>,
}

/// One shard's queue of questions from the API.
#[derive(Debug)]
pub struct QueryRing(ArrayQueue<Query>);

impl Default for QueryRing {
    fn default() -> Self {
        QueryRing(ArrayQueue::new(API_QUERY_RING))
    }
}

impl QueryRing {
    /// API side: `Err` gives the query back when the ring is full (the shard is busy).
    pub fn ask(&self, query: Query) -> Result<(), Query> {
        self.0.push(query)
    }

    /// Shard side: answers every waiting question with `answer` (at most the ring's capacity
    /// per call, so one drain is bounded).
    pub fn drain(&self, mut answer: impl FnMut(&Question) -> Answer) -> usize {
        let mut answered = 0;
        while answered < API_QUERY_RING {
            let Some(query) = self.0.pop() else { break };
            query.reply.put(answer(&query.question));
            answered += 1;
        }
        answered
    }

    /// Shard side: like [`QueryRing::drain`], but `answer` is handed where to reply and may
    /// reply later (a control, once what it changed is durable).
    pub fn drain_later(&self, mut answer: impl FnMut(&Question, Box<dyn FnOnce(Answer)>)) -> usize {
        let mut answered = 0;
        while answered < API_QUERY_RING {
            let Some(query) = self.0.pop() else { break };
            let reply = query.reply;
            answer(&query.question, Box::new(move |a| reply.put(a)));
            answered += 1;
        }
        answered
    }
}

/// Every shard's ring, indexed by shard.
#[derive(Clone, Debug)]
pub struct FleetQueries(Arc<[QueryRing]>);

impl FleetQueries {
    pub fn new(shards: usize) -> FleetQueries {
        FleetQueries((0..shards).map(|_| QueryRing::default()).collect())
    }

    pub fn shard(&self, shard: usize) -> &QueryRing {
        &self.0[shard]
    }

    pub fn shards(&self) -> usize {
        self.0.len()
    }
}

/// A page of a list over all shards: each shard's page (each in id order, each at most
/// `limit` long) merged in id order and cut at `limit`. `next` is the last id shown when more
/// match after it, the cursor of the next page.
pub fn merge_pages(
    pages: Vec<MonitorPage>,
    limit: usize,
) -> (Vec<MonitorRow>, Option<String>, u64) {
    let limit = limit.min(API_LIST_MAX_LIMIT);
    let total = pages.iter().map(|p| p.total).sum();
    let available: u64 = pages.iter().map(|p| p.after_cursor).sum();
    let mut rows: Vec<MonitorRow> = pages.into_iter().flat_map(|p| p.rows).collect();
    rows.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    rows.truncate(limit);
    let more = available > rows.len() as u64;
    let next = if more { rows.last().map(|r| r.id.clone()) } else { None };
    (rows, next, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> MonitorRow {
        MonitorRow {
            id: id.into(),
            name: id.into(),
            kind: "tcp",
            health: MonitorHealth::Up,
            incident_id: None,
            groups: Arc::default(),
            last_check: None,
            silenced_until_unix_ms: None,
            state_since_unix_ms: 0,
        }
    }

    #[test]
    fn a_full_ring_refuses_and_a_drain_answers_each_question_once() {
        let ring = QueryRing::default();
        let replies: Vec<Arc<Reply>> = (0..API_QUERY_RING).map(|_| Arc::default()).collect();
        for reply in &replies {
            let question = Question::ListMonitors(ListFilter::default());
            ring.ask(Query { question, reply: reply.clone() }).unwrap();
        }
        let extra = Query {
            question: Question::ListMonitors(ListFilter::default()),
            reply: Arc::default(),
        };
        assert!(ring.ask(extra).is_err(), "bounded");
        let page = MonitorPage { rows: vec![], after_cursor: 0, total: 7 };
        let answered = ring.drain(|_| Answer::Monitors(page.clone()));
        assert_eq!(answered, API_QUERY_RING);
        for reply in &replies {
            let Some(Answer::Monitors(page)) = reply.take() else { panic!("no answer") };
            assert_eq!(page.total, 7);
            assert!(reply.take().is_none(), "one answer");
        }
    }

    #[test]
    fn pages_merge_in_id_order_with_a_cursor_while_more_remain() {
        // Shard a has more after its page than it sent (limit 3).
        let a = MonitorPage { rows: vec![row("a"), row("c"), row("e")], after_cursor: 4, total: 5 };
        let b = MonitorPage { rows: vec![row("b"), row("d")], after_cursor: 2, total: 2 };
        let (rows, next, total) = merge_pages(vec![a, b], 3);
        let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!((next.as_deref(), total), (Some("c"), 7));
        let exactly =
            MonitorPage { rows: vec![row("g"), row("h"), row("i")], after_cursor: 4, total: 9 };
        let (_, next, _) = merge_pages(vec![exactly], 3);
        assert_eq!(next.as_deref(), Some("i"), "a full page from one shard with more behind it");
        let last = MonitorPage { rows: vec![row("f")], after_cursor: 1, total: 1 };
        let (rows, next, _) = merge_pages(vec![last], 3);
        assert_eq!((rows.len(), next), (1, None), "the last page has no cursor");
    }

    #[test]
    fn the_filter_matches_state_and_name() {
        let f = ListFilter {
            state: Some(MonitorHealth::Down),
            name_contains: Some("web".into()),
            group: Some("eu".into()),
            ..Default::default()
        };
        let eu = ["us".to_string(), "eu".to_string()];
        assert!(f.matches("web-1", &eu, MonitorHealth::Down));
        assert!(!f.matches("web-1", &eu[..1], MonitorHealth::Down));
        assert!(!f.matches("web-1", &eu, MonitorHealth::Up));
        assert!(!f.matches("db", &eu, MonitorHealth::Down));
        assert!(ListFilter::default().matches("anything", &[], MonitorHealth::Disabled));
        assert_eq!(MonitorHealth::parse("disabled"), Some(MonitorHealth::Disabled));
        assert_eq!(MonitorHealth::parse("sideways"), None);
    }
}
