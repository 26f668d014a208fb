//! Interventions: docker restart, webhook, systemd, kubernetes.

use super::send::Sender;
use super::{ActionsConfig, InterventionResult};
use crate::manifest::InterventionAction;

/// Runs `action` once, bounded by its timeout.
pub async fn run(
    _config: &ActionsConfig,
    _sender: &Sender,
    _action: &InterventionAction,
) -> InterventionResult {
    InterventionResult::Failed
}
