//! One delivery attempt of an alert to one endpoint, classified for the retry schedule.

use std::rc::Rc;

use super::retry::AttemptResult;
use super::ActionsConfig;
use crate::alert::RenderedAlert;
use crate::manifest::Notify;

/// A shard's senders: HTTP client, log files, SMTP.
pub struct Sender {
    _config: ActionsConfig,
}

impl Sender {
    pub fn new(config: &ActionsConfig) -> Sender {
        Sender { _config: config.clone() }
    }

    /// One attempt; `job` is the delivery's id, `wall_ms` the Unix time of the payload.
    pub async fn send(
        &self,
        _job: u64,
        endpoint: &Notify,
        _alert: &Rc<RenderedAlert>,
        _wall_ms: i64,
    ) -> AttemptResult {
        AttemptResult::Permanent(format!("{} notifier not implemented yet", endpoint.kind()))
    }
}
