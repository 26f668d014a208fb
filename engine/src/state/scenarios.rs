//! Every scenario of docs/state-machine.md as a table: (virtual time, event, exact effects).

use cpra_net::{FailureKind, Warning};

use super::*;
use crate::colour::Colour::{self, *};
use Reason::*;

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
/// An arbitrary start so times are not all zero; a whole second, like a real tick.
const T0: u64 = 1_000 * SEC;

/// What the test harness feeds in; the harness turns it into an [`Event`], taking check
/// generations the way the runtime does.
#[derive(Clone, Copy, Debug)]
enum Ev {
    /// A check that starts and fails now.
    F,
    /// A check that starts and succeeds now.
    S,
    /// A check that starts and succeeds now with a certificate warning.
    W,
    /// Start a check now whose result comes later (`EndF`/`EndS`). No event.
    Begin,
    EndF,
    EndS,
    IvOk,
    IvFail,
    IvUnknown,
    MStart,
    MEnd,
    Disable,
    Enable,
    Config,
    Remove,
}

struct Sim {
    state: MonitorState,
    policy: Policy,
    in_flight: Option<Generation>,
}

impl Sim {
    fn new(policy: Policy) -> Sim {
        Sim { state: MonitorState::new(), policy, in_flight: None }
    }

    fn event(&mut self, ev: Ev) -> Option<Event> {
        let fail =
            |generation| Event::CheckFailed { generation, kind: FailureKind::ConnectRefused };
        let ok = |generation, warning| Event::CheckSucceeded { generation, warning };
        Some(match ev {
            Ev::F => fail(self.state.begin_check(self.state.generation().next())),
            Ev::S => ok(self.state.begin_check(self.state.generation().next()), None),
            Ev::W => ok(
                self.state.begin_check(self.state.generation().next()),
                Some(Warning::CertificateExpiring { days_left: 10 }),
            ),
            Ev::Begin => {
                assert!(self.in_flight.is_none(), "one check in flight per monitor");
                self.in_flight = Some(self.state.begin_check(self.state.generation().next()));
                return None;
            }
            Ev::EndF => fail(self.in_flight.take().expect("Begin first")),
            Ev::EndS => ok(self.in_flight.take().expect("Begin first"), None),
            Ev::IvOk => Event::InterventionSucceeded,
            Ev::IvFail => Event::InterventionFailed,
            Ev::IvUnknown => Event::InterventionUnknown,
            Ev::MStart => Event::MaintenanceStarted,
            Ev::MEnd => Event::MaintenanceEnded,
            Ev::Disable => Event::Disabled,
            Ev::Enable => Event::Enabled,
            Ev::Config => Event::ConfigChanged,
            Ev::Remove => Event::Removed,
        })
    }

    /// Runs the table, asserting the exact effects after every event; returns the last
    /// effects (for counter checks).
    fn run(&mut self, name: &str, rows: &[(u64, Ev, Vec<Effect>)]) -> Effects {
        let mut last = Effects::new();
        let mut prev_at = 0;
        for (i, (at, ev, want)) in rows.iter().enumerate() {
            assert!(*at >= prev_at, "{name}: row {i} goes back in time");
            prev_at = *at;
            match self.event(*ev) {
                None => assert!(want.is_empty(), "{name}: row {i}: {ev:?} has no effects"),
                Some(event) => {
                    last = transition(&mut self.state, &self.policy, event, *at);
                    assert_eq!(
                        last.as_slice(),
                        want.as_slice(),
                        "{name}: row {i} ({ev:?} at t0+{} ms)\nstate: {:?}",
                        at - T0,
                        self.state
                    );
                }
            }
        }
        last
    }
}

fn policy(unhealthy: u16, healthy: u16, intervention: bool) -> Policy {
    Policy { unhealthy, healthy, has_intervention: intervention, ..Policy::default() }
}

fn alert(colour: Colour, reason: Reason, seq: u32, failures: u16, at: u64) -> Effect {
    Effect::Alert {
        colour,
        reason,
        incident_seq: Some(seq),
        consecutive_failures: failures,
        not_before_ms: at,
    }
}

fn gray(failures: u16, at: u64) -> Effect {
    Effect::Alert {
        colour: Gray,
        reason: MaintenanceStarted,
        incident_seq: None,
        consecutive_failures: failures,
        not_before_ms: at,
    }
}

fn opened(seq: u32) -> Effect {
    Effect::IncidentOpened { incident_seq: seq }
}

fn closed(seq: u32) -> Effect {
    Effect::IncidentClosed { incident_seq: seq, silent: false }
}

fn t(n: u64) -> u64 {
    T0 + n * 10 * SEC
}

#[test]
fn hot_state_fits_32_bytes() {
    // Half of the 64-byte per-monitor budget; the rest is for scheduling.
    assert!(std::mem::size_of::<MonitorState>() <= 32, "{}", std::mem::size_of::<MonitorState>());
}

#[test]
fn scenario_1_threshold_red_then_recovery() {
    let mut sim = Sim::new(policy(3, 2, false));
    sim.run(
        "1",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::F, vec![]),
            (t(2), Ev::F, vec![opened(1), alert(Red, ThresholdReached, 1, 3, t(2))]),
            (t(3), Ev::F, vec![]),
            (t(4), Ev::S, vec![]),
            (t(5), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(5))]),
        ],
    );
    assert!(!sim.state.recovering() && !sim.state.incident_open());
}

#[test]
fn scenario_2_intervention_then_verification() {
    let mut sim = Sim::new(policy(2, 2, true));
    sim.run(
        "2",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::F, vec![Effect::StartIntervention { attempt: 1 }]),
            (t(2), Ev::IvOk, vec![alert(Cyan, InterventionSucceeded, 1, 2, t(2))]),
            (t(3), Ev::S, vec![]),
            (t(4), Ev::S, vec![alert(Green, Recovered, 1, 0, t(4))]),
        ],
    );
    assert_eq!(sim.state.intervention_attempts(), 0, "attempts reset on recovery");
}

#[test]
fn scenario_3_failure_during_verification_is_red() {
    let mut sim = Sim::new(policy(2, 2, true));
    sim.run(
        "3",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::F, vec![Effect::StartIntervention { attempt: 1 }]),
            (t(2), Ev::IvOk, vec![alert(Cyan, InterventionSucceeded, 1, 2, t(2))]),
            (t(3), Ev::F, vec![opened(1), alert(Red, VerificationFailed, 1, 3, t(3))]),
            (t(4), Ev::S, vec![]),
            (t(5), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(5))]),
        ],
    );
}

#[test]
fn scenario_4_intervention_fails_is_red() {
    let mut sim = Sim::new(policy(2, 2, true));
    sim.run(
        "4",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::F, vec![Effect::StartIntervention { attempt: 1 }]),
            (t(2), Ev::IvFail, vec![opened(1), alert(Red, InterventionFailed, 1, 2, t(2))]),
            (t(3), Ev::S, vec![]),
            (t(4), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(4))]),
        ],
    );
}

#[test]
fn scenario_5_blip() {
    let mut sim = Sim::new(policy(3, 2, false));
    sim.run(
        "5",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::S, vec![]),
            (t(2), Ev::S, vec![alert(Green, Recovered, 1, 0, t(2))]),
            // The next blip is a new episode with a new number.
            (t(3), Ev::F, vec![alert(Yellow, FirstFailure, 2, 1, T0 + 5 * MIN)]),
        ],
    );
}

#[test]
fn scenario_6_unhealthy_1_yellow_then_red() {
    let mut sim = Sim::new(policy(1, 2, false));
    sim.run(
        "6",
        &[
            (
                t(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, t(0)),
                    opened(1),
                    alert(Red, ThresholdReached, 1, 1, t(0)),
                ],
            ),
            (t(1), Ev::F, vec![]),
            (t(2), Ev::S, vec![]),
            (t(3), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(3))]),
        ],
    );
}

#[test]
fn scenario_7_cooldown_delays_second_red() {
    let mut sim = Sim::new(policy(1, 1, false));
    let last = sim.run(
        "7",
        &[
            (
                T0,
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, T0),
                    opened(1),
                    alert(Red, ThresholdReached, 1, 1, T0),
                ],
            ),
            // Green bypasses its cooldown.
            (T0 + MIN, Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, T0 + MIN)]),
            // A new incident: yellow and red are both within their cooldowns.
            (
                T0 + 2 * MIN,
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 2, 1, T0 + 5 * MIN),
                    opened(2),
                    alert(Red, ThresholdReached, 2, 1, T0 + 5 * MIN),
                ],
            ),
        ],
    );
    assert_eq!(last.counters.get(Counter::AlertDelayed), 2);
    // Recovering while that red waits: the green is not sent before it.
    let last = sim.run(
        "7b",
        &[(T0 + 3 * MIN, Ev::S, vec![closed(2), alert(Green, Recovered, 2, 0, T0 + 5 * MIN)])],
    );
    assert_eq!(last.counters.get(Counter::AlertDelayed), 1);
}

/// Scenario 7 carried on: incidents 2 and 3 both begin and end inside the cooldown of
/// incident 1's alerts. Each is delayed to the end of that cooldown, and each keeps its own
/// number: they are separate alerts due at the same moment, not one merged into the other
/// (docs/state-machine.md, "A cooldown delays a new incident's alerts").
#[test]
fn scenario_7_incidents_within_one_cooldown_are_each_announced_and_closed() {
    let mut sim = Sim::new(policy(1, 1, false));
    let m = |n: u64| T0 + n * MIN;
    let end = m(5);
    sim.run(
        "7c",
        &[
            (
                m(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, m(0)),
                    opened(1),
                    alert(Red, ThresholdReached, 1, 1, m(0)),
                ],
            ),
            (m(1), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, m(1))]),
            (
                m(2),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 2, 1, end),
                    opened(2),
                    alert(Red, ThresholdReached, 2, 1, end),
                ],
            ),
            (m(3), Ev::S, vec![closed(2), alert(Green, Recovered, 2, 0, end)]),
            (
                m(4),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 3, 1, end),
                    opened(3),
                    alert(Red, ThresholdReached, 3, 1, end),
                ],
            ),
            (m(4) + 30 * SEC, Ev::S, vec![closed(3), alert(Green, Recovered, 3, 0, end)]),
            // After that moment, the next incident's red waits a whole cooldown after it.
            (
                m(6),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 4, 1, m(10)),
                    opened(4),
                    alert(Red, ThresholdReached, 4, 1, m(10)),
                ],
            ),
        ],
    );
}

#[test]
fn scenario_7_green_without_bypass_has_its_own_cooldown() {
    let mut sim = Sim::new(Policy { green_bypasses_cooldown: false, ..policy(1, 1, false) });
    let m = |n| T0 + n * MIN;
    sim.run(
        "7 no bypass",
        &[
            (
                m(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, m(0)),
                    opened(1),
                    alert(Red, ThresholdReached, 1, 1, m(0)),
                ],
            ),
            (m(1), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, m(1))]),
            (
                m(7),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 2, 1, m(7)),
                    opened(2),
                    alert(Red, ThresholdReached, 2, 1, m(7)),
                ],
            ),
            // Green last went at m(1): the next may go at m(6), already past.
            (m(8), Ev::S, vec![closed(2), alert(Green, Recovered, 2, 0, m(8))]),
            (
                m(9),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 3, 1, m(12)),
                    opened(3),
                    alert(Red, ThresholdReached, 3, 1, m(12)),
                ],
            ),
            (m(10), Ev::S, vec![closed(3), alert(Green, Recovered, 3, 0, m(13))]),
        ],
    );
}

#[test]
fn scenario_8_maintenance_queues_only_gray_then_first_failure_after_acts() {
    for intervention in [false, true] {
        let mut sim = Sim::new(policy(2, 2, intervention));
        let act = if intervention {
            vec![Effect::StartIntervention { attempt: 1 }]
        } else {
            vec![opened(1), alert(Red, ThresholdReached, 1, 4, t(5))]
        };
        let last = sim.run(
            "8",
            &[
                (t(0), Ev::MStart, vec![gray(0, t(0))]),
                (t(1), Ev::F, vec![]),
                (t(2), Ev::F, vec![]),
                (t(3), Ev::F, vec![]),
                (t(4), Ev::MEnd, vec![]),
                (t(5), Ev::F, act),
            ],
        );
        assert_eq!(last.counters.get(Counter::SuppressedByMaintenance), 0);
        if !intervention {
            // The red announced the episode, so its recovery is told.
            sim.run(
                "8 recovery",
                &[
                    (t(6), Ev::S, vec![]),
                    (t(7), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(7))]),
                ],
            );
        }
    }
}

#[test]
fn scenario_8_counts_what_maintenance_held_back() {
    let mut sim = Sim::new(policy(2, 2, false));
    sim.run("8 start", &[(t(0), Ev::MStart, vec![gray(0, t(0))])]);
    let first = sim.run("8 f1", &[(t(1), Ev::F, vec![])]);
    assert_eq!(first.counters.get(Counter::SuppressedByMaintenance), 1, "the yellow");
    let second = sim.run("8 f2", &[(t(2), Ev::F, vec![])]);
    assert_eq!(second.counters.get(Counter::ThresholdHeldByMaintenance), 1);
    // Recovery inside the window: nothing was announced, nothing to close, no green.
    let ok = sim.run("8 ok", &[(t(3), Ev::S, vec![]), (t(4), Ev::S, vec![])]);
    assert_eq!(ok.counters.get(Counter::Recovered), 1);
    sim.run("8 end", &[(t(5), Ev::MEnd, vec![]), (t(6), Ev::S, vec![])]);
}

#[test]
fn scenario_8_no_gray_without_a_gray_code() {
    let p = Policy { dispatch: ColourSet::ALL.without(Gray), ..policy(2, 2, false) };
    let mut sim = Sim::new(p);
    let last = sim.run("8 no gray", &[(t(0), Ev::MStart, vec![])]);
    assert_eq!(last.counters.get(Counter::SuppressedNoCode), 1);
}

#[test]
fn scenario_9_certificate_warning_is_yellow_then_green() {
    // Even with an intervention and unhealthy 1: a warning never escalates.
    let mut sim = Sim::new(policy(1, 2, true));
    sim.run(
        "9",
        &[
            (t(0), Ev::W, vec![alert(Yellow, WarningRaised, 1, 0, t(0))]),
            (t(1), Ev::W, vec![]),
            (t(2), Ev::W, vec![]),
            (t(3), Ev::S, vec![alert(Green, WarningCleared, 1, 0, t(3))]),
            (t(4), Ev::S, vec![]),
        ],
    );
    assert!(!sim.state.warning() && !sim.state.recovering());
}

#[test]
fn scenario_10_check_started_before_intervention_does_not_verify() {
    // healthy 1: a stale success would otherwise recover the monitor at once.
    let mut sim = Sim::new(policy(2, 1, true));
    let last = sim.run(
        "10",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::F, vec![Effect::StartIntervention { attempt: 1 }]),
            (t(2), Ev::Begin, vec![]),
            (t(3), Ev::IvOk, vec![alert(Cyan, InterventionSucceeded, 1, 2, t(3))]),
            (t(4), Ev::EndS, vec![]),
        ],
    );
    assert_eq!(last.counters.get(Counter::StaleCheck), 1);
    assert_eq!(sim.state.verify_remaining(), 1);
    sim.run("10 fresh", &[(t(5), Ev::S, vec![alert(Green, Recovered, 1, 0, t(5))])]);
}

#[test]
fn scenario_10_stale_failure_is_not_a_failed_verification() {
    let mut sim = Sim::new(policy(2, 2, true));
    sim.run(
        "10 stale F",
        &[
            (t(0), Ev::F, vec![alert(Yellow, FirstFailure, 1, 1, t(0))]),
            (t(1), Ev::F, vec![Effect::StartIntervention { attempt: 1 }]),
            (t(2), Ev::Begin, vec![]),
            (t(3), Ev::IvOk, vec![alert(Cyan, InterventionSucceeded, 1, 2, t(3))]),
            (t(4), Ev::EndF, vec![]),
            (t(5), Ev::F, vec![opened(1), alert(Red, VerificationFailed, 1, 4, t(5))]),
        ],
    );
}

#[test]
fn unknown_intervention_outcome_is_red_and_never_retried() {
    let mut sim = Sim::new(Policy { recovery_max_attempts: 3, ..policy(1, 2, true) });
    sim.run(
        "unknown",
        &[
            (
                t(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, t(0)),
                    Effect::StartIntervention { attempt: 1 },
                ],
            ),
            (
                t(1),
                Ev::IvUnknown,
                vec![opened(1), alert(Red, InterventionOutcomeUnknown, 1, 1, t(1))],
            ),
            (t(2), Ev::F, vec![]),
            (t(3), Ev::F, vec![]),
        ],
    );
}

#[test]
fn failed_intervention_is_retried_up_to_max_attempts_with_one_red() {
    let mut sim = Sim::new(Policy { recovery_max_attempts: 2, ..policy(1, 2, true) });
    let last = sim.run(
        "retries",
        &[
            (
                t(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, t(0)),
                    Effect::StartIntervention { attempt: 1 },
                ],
            ),
            // Failures while the intervention runs do not stack another one or a red.
            (t(1), Ev::F, vec![]),
            (t(2), Ev::IvFail, vec![opened(1), alert(Red, InterventionFailed, 1, 2, t(2))]),
            (t(3), Ev::F, vec![Effect::StartIntervention { attempt: 2 }]),
            (t(4), Ev::IvFail, vec![]),
        ],
    );
    assert_eq!(last.counters.get(Counter::RedAlreadySent), 1);
    sim.run(
        "retries exhausted",
        &[
            (t(5), Ev::F, vec![]),
            (t(6), Ev::S, vec![]),
            (t(7), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(7))]),
        ],
    );
}

#[test]
fn disabled_cancels_and_sends_nothing_then_resumes() {
    let mut sim = Sim::new(policy(1, 2, true));
    let last = sim.run(
        "disable",
        &[
            (
                t(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, t(0)),
                    Effect::StartIntervention { attempt: 1 },
                ],
            ),
            (t(1), Ev::Disable, vec![Effect::CancelQueuedAlerts, Effect::CancelIntervention]),
            (t(2), Ev::F, vec![]),
            (t(3), Ev::IvFail, vec![]),
            (t(4), Ev::MStart, vec![]),
            (t(5), Ev::Config, vec![]),
        ],
    );
    assert_eq!(last.counters.get(Counter::IgnoredWhileDisabled), 1);
    assert!(sim.state.in_maintenance(), "maintenance is tracked while disabled");
    sim.run(
        "enable",
        &[
            (t(6), Ev::Enable, vec![]),
            (t(7), Ev::MEnd, vec![]),
            // Same episode (never recovered), the one attempt used: red at once, no new yellow.
            (t(8), Ev::F, vec![opened(1), alert(Red, ThresholdReached, 1, 2, t(8))]),
        ],
    );
}

#[test]
fn config_change_keeps_incident_and_cancels_actions() {
    let mut sim = Sim::new(policy(1, 2, false));
    sim.run(
        "config",
        &[
            (
                t(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, t(0)),
                    opened(1),
                    alert(Red, ThresholdReached, 1, 1, t(0)),
                ],
            ),
            (t(1), Ev::Config, vec![Effect::CancelQueuedAlerts]),
            (t(2), Ev::F, vec![]),
            (t(3), Ev::S, vec![]),
            (t(4), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, t(4))]),
        ],
    );
}

#[test]
fn config_change_gives_back_a_cooldown_slot_that_was_never_used() {
    let mut sim = Sim::new(policy(1, 1, false));
    let m = |n| T0 + n * MIN;
    sim.run(
        "cancel cooldown",
        &[
            (
                m(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, m(0)),
                    opened(1),
                    alert(Red, ThresholdReached, 1, 1, m(0)),
                ],
            ),
            (m(1), Ev::S, vec![closed(1), alert(Green, Recovered, 1, 0, m(1))]),
            (
                m(2),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 2, 1, m(5)),
                    opened(2),
                    alert(Red, ThresholdReached, 2, 1, m(5)),
                ],
            ),
            // The waiting yellow and red are dropped; the incident stays open.
            (m(3), Ev::Config, vec![Effect::CancelQueuedAlerts]),
            (m(4), Ev::S, vec![closed(2), alert(Green, Recovered, 2, 0, m(4))]),
            // Yellow last really went at m(0): the next may go at m(5), not m(10).
            (
                m(4),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 3, 1, m(5)),
                    opened(3),
                    alert(Red, ThresholdReached, 3, 1, m(5)),
                ],
            ),
        ],
    );
}

#[test]
fn removed_closes_incident_silently_and_ignores_everything_after() {
    let mut sim = Sim::new(policy(1, 2, true));
    let last = sim.run(
        "remove",
        &[
            (
                t(0),
                Ev::F,
                vec![
                    alert(Yellow, FirstFailure, 1, 1, t(0)),
                    Effect::StartIntervention { attempt: 1 },
                ],
            ),
            (t(1), Ev::IvFail, vec![opened(1), alert(Red, InterventionFailed, 1, 1, t(1))]),
            (t(2), Ev::F, vec![]),
            (
                t(3),
                Ev::Remove,
                vec![
                    Effect::IncidentClosed { incident_seq: 1, silent: true },
                    Effect::CancelQueuedAlerts,
                ],
            ),
            (t(4), Ev::S, vec![]),
            (t(5), Ev::Enable, vec![]),
        ],
    );
    assert_eq!(last.counters.get(Counter::IgnoredAfterRemoval), 1);
}

#[test]
fn colours_without_a_code_are_not_queued_but_still_drive_the_incident() {
    let p = Policy { dispatch: ColourSet::EMPTY.with(Red), ..policy(2, 2, false) };
    let mut sim = Sim::new(p);
    sim.run(
        "no codes",
        &[
            (t(0), Ev::F, vec![]),
            (t(1), Ev::F, vec![opened(1), alert(Red, ThresholdReached, 1, 2, t(1))]),
            (t(2), Ev::S, vec![]),
            (t(3), Ev::S, vec![closed(1)]),
        ],
    );
}

#[test]
fn policy_resolution_follows_the_manifest_rules() {
    assert_eq!(Policy::threshold(Some(3), Some(5), DEFAULT_UNHEALTHY), 3);
    assert_eq!(Policy::threshold(None, Some(5), DEFAULT_UNHEALTHY), 5);
    assert_eq!(Policy::threshold(None, None, DEFAULT_UNHEALTHY), 1);
    assert_eq!(Policy::threshold(Some(0), None, DEFAULT_HEALTHY), 1);
    assert_eq!(Policy::threshold(Some(-4), None, DEFAULT_HEALTHY), 1);
    assert_eq!(Policy::threshold(None, None, DEFAULT_HEALTHY), 2);
    assert_eq!(Policy::threshold(Some(i64::MAX), None, 2), MAX_THRESHOLD);
    assert_eq!(Policy::attempts(None), 1);
    assert_eq!(Policy::attempts(Some(0)), 1);
    assert_eq!(Policy::attempts(Some(4)), 4);
    assert_eq!(Policy::attempts(Some(100_000)), 255);
}

#[test]
fn generation_comparison_survives_wraparound() {
    let a = Generation::new(u16::MAX);
    let b = Generation::new(1);
    assert!(b.is_after(a) && !a.is_after(b));
    assert!(!a.is_after(a));
    let mut st = MonitorState::new();
    for _ in 0..70_000 {
        let before = st.generation();
        assert!(st.begin_check(st.generation().next()).is_after(before));
    }
}
