//! Property tests: random policies and random event sequences under a virtual clock, checked
//! against the rules of docs/state-machine.md that must hold whatever happens.
//!
//! Two kinds of rule: over a whole run (red once per incident, cooldowns, never stuck: checked
//! by `Run` against a model built from the effects alone), and within one transition (the
//! effects say exactly how the state changed: checked by [`effects_match_state_change`] after
//! every event of both tests, including the arbitrary-input one).
//!
//! Overflow checks and the module's `debug_assert!` invariants are on in test builds, so "never
//! panics" also means "no counter overflows and no invariant breaks".

use std::collections::HashMap;

use cpra_net::{FailureKind, Warning};
use proptest::prelude::*;

use super::*;
use crate::colour::Colour;

/// What one transition's effects must say about the state change they come with, whatever
/// the policy, event, time or starting state. The shard journals and acts on the effects
/// alone, so each one must mean what `effects.rs` says it means, and each state change the
/// shard must hear about must come with its effect.
fn effects_match_state_change(
    before: &MonitorState,
    after: &MonitorState,
    policy: &Policy,
    event: Event,
    now_ms: u64,
    fx: &Effects,
) -> Result<(), TestCaseError> {
    let effects = fx.as_slice();
    let ctx = || format!("{event:?} at {now_ms} -> {fx:?}\nbefore: {before:?}\nafter:  {after:?}");
    let alert_at = |colour: Colour| {
        effects.iter().position(|e| matches!(e, Effect::Alert { colour: c, .. } if *c == colour))
    };

    // A removed monitor is inert; a disabled one does nothing but be removed.
    if before.removed() {
        prop_assert!(effects.is_empty() && after == before, "after removal: {}", ctx());
        return Ok(());
    }
    let live = !before.disabled();
    if !live && event != Event::Removed {
        prop_assert!(effects.is_empty(), "while disabled: {}", ctx());
    }

    // One effect of each kind at most, one alert per colour at most.
    for (i, e) in effects.iter().enumerate() {
        let same_kind = effects[..i].iter().any(|p| match (p, e) {
            (Effect::Alert { colour: a, .. }, Effect::Alert { colour: b, .. }) => a == b,
            _ => std::mem::discriminant(p) == std::mem::discriminant(e),
        });
        prop_assert!(!same_kind, "{e:?} twice: {}", ctx());
    }

    // The incident opens exactly when the flag goes false -> true, with the episode's number,
    // never inside a maintenance window, and its red (if the monitor has a red code) follows
    // at once: journal first, then act. A red never comes without it.
    let opened = effects.iter().position(|e| matches!(e, Effect::IncidentOpened { .. }));
    prop_assert_eq!(
        opened.is_some(),
        !before.incident_open() && after.incident_open(),
        "open: {}",
        ctx()
    );
    if let Some(i) = opened {
        prop_assert_eq!(effects[i], Effect::IncidentOpened { incident_seq: after.incident_seq() });
        prop_assert!(!after.in_maintenance(), "opened in maintenance: {}", ctx());
        prop_assert_eq!(
            alert_at(Colour::Red) == Some(i + 1),
            policy.dispatch.contains(Colour::Red),
            "red after opening: {}",
            ctx()
        );
    }
    if let Some(r) = alert_at(Colour::Red) {
        prop_assert!(r > 0 && opened == Some(r - 1), "red without opening: {}", ctx());
    }

    // It closes exactly when the flag goes true -> false, silently only on removal, before
    // the green that announces it.
    let closed = effects.iter().position(|e| matches!(e, Effect::IncidentClosed { .. }));
    prop_assert_eq!(
        closed.is_some(),
        before.incident_open() && !after.incident_open(),
        "close: {}",
        ctx()
    );
    if let Some(i) = closed {
        let silent = event == Event::Removed;
        prop_assert_eq!(
            effects[i],
            Effect::IncidentClosed { incident_seq: before.incident_seq(), silent }
        );
        if let Some(g) = alert_at(Colour::Green) {
            prop_assert!(g > i, "green before the close: {}", ctx());
        }
    }

    // An intervention starts exactly when one becomes pending: configured, outside
    // maintenance, numbered by its attempt, within the incident's allowance.
    let started = effects.iter().find_map(|e| match *e {
        Effect::StartIntervention { attempt } => Some(attempt),
        _ => None,
    });
    prop_assert_eq!(
        started.is_some(),
        !before.intervention_pending() && after.intervention_pending(),
        "start: {}",
        ctx()
    );
    if let Some(attempt) = started {
        prop_assert!(policy.has_intervention && !after.in_maintenance(), "{}", ctx());
        prop_assert_eq!(attempt, after.intervention_attempts());
        prop_assert_eq!(u16::from(attempt), u16::from(before.intervention_attempts()) + 1);
        prop_assert!(attempt <= policy.recovery_max_attempts.max(1), "{}", ctx());
    }
    // A pending intervention ends by its result or by a cancel the shard is told about.
    let cancelled = effects.contains(&Effect::CancelIntervention);
    if cancelled {
        prop_assert!(before.intervention_pending() && !after.intervention_pending(), "{}", ctx());
    }
    if before.intervention_pending() && !after.intervention_pending() {
        let result = matches!(
            event,
            Event::InterventionSucceeded | Event::InterventionFailed | Event::InterventionUnknown
        );
        prop_assert!(cancelled || result, "intervention dropped silently: {}", ctx());
    }
    if event == Event::InterventionSucceeded && live && before.intervention_pending() {
        // Verification: `healthy` later checks must pass.
        prop_assert_eq!(after.verify_remaining(), policy.healthy.clamp(1, MAX_THRESHOLD));
    }

    // Queued alerts are dropped on disable, config change and removal, and only then.
    let drops = match event {
        Event::Removed => true,
        Event::Disabled | Event::ConfigChanged => live,
        _ => false,
    };
    prop_assert_eq!(effects.contains(&Effect::CancelQueuedAlerts), drops, "{}", ctx());

    // Every alert: a colour the monitor has a code for, not before now, the episode's number
    // (none for gray), the failure count of the state it leaves, nothing but gray inside a
    // maintenance window.
    for e in effects {
        if let Effect::Alert { colour, incident_seq, consecutive_failures, not_before_ms, .. } = *e
        {
            prop_assert!(policy.dispatch.contains(colour), "no code: {}", ctx());
            prop_assert!(not_before_ms >= now_ms.min(MAX_NOW_MS), "in the past: {}", ctx());
            let seq = (colour != Colour::Gray).then_some(after.incident_seq());
            prop_assert_eq!(incident_seq, seq, "{}", ctx());
            prop_assert_eq!(consecutive_failures, after.consecutive_failures(), "{}", ctx());
            if colour != Colour::Gray {
                prop_assert!(!after.in_maintenance(), "in maintenance: {}", ctx());
            }
        }
    }
    // The rest of the per-colour rules only hold for alerts that may be sent (an alert
    // suppressed for maintenance or for having no code leaves the state change as it is).
    let may = |colour: Colour| {
        live && policy.dispatch.contains(colour)
            && (colour == Colour::Gray || !before.in_maintenance())
    };

    // Gray: exactly when a window starts.
    let gray = event == Event::MaintenanceStarted && !before.in_maintenance() && may(Colour::Gray);
    prop_assert_eq!(alert_at(Colour::Gray).is_some(), gray, "gray: {}", ctx());

    // Cyan: exactly when the pending intervention reports success.
    let cyan =
        event == Event::InterventionSucceeded && before.intervention_pending() && may(Colour::Cyan);
    prop_assert_eq!(alert_at(Colour::Cyan).is_some(), cyan, "cyan: {}", ctx());

    // Yellow: exactly on the first failure of a run with no incident open and no verification
    // under way, or on a warning that newly appears.
    let yellow = may(Colour::Yellow)
        && match event {
            Event::CheckFailed { .. } => {
                before.consecutive_failures() == 0
                    && before.pulse_failures() == 0
                    && before.verify_remaining() == 0
                    && !before.incident_open()
            }
            Event::CheckSucceeded { warning, .. } => warning.is_some() && !before.warning(),
            _ => false,
        };
    prop_assert_eq!(alert_at(Colour::Yellow).is_some(), yellow, "yellow: {}", ctx());

    // Green: only for a successful check that ends an announced episode: afterwards nothing is
    // wrong (no failures being recovered from, no incident, no warning).
    if alert_at(Colour::Green).is_some() {
        prop_assert!(matches!(event, Event::CheckSucceeded { .. }), "{}", ctx());
        prop_assert!(before.has(flag::ANNOUNCED), "green unannounced: {}", ctx());
        prop_assert!(before.recovering() || before.warning(), "green from quiet: {}", ctx());
        prop_assert!(
            !after.recovering() && !after.incident_open() && !after.warning(),
            "green while something is wrong: {}",
            ctx()
        );
    }

    // Recovery is counted exactly when the monitor stops recovering, and it only starts
    // recovering on a failure.
    let recovered = before.recovering() && !after.recovering();
    prop_assert_eq!(fx.counters.get(Counter::Recovered) == 1, recovered, "{}", ctx());
    if !before.recovering() && after.recovering() {
        prop_assert!(matches!(event, Event::CheckFailed { .. }), "{}", ctx());
    }

    // A new episode number only when a run of failures begins or a warning appears on a quiet
    // monitor; otherwise the number stays, so one incident keeps one id.
    if after.incident_seq() != before.incident_seq() {
        prop_assert_eq!(after.incident_seq(), before.incident_seq().wrapping_add(1));
        let begins = match event {
            Event::CheckFailed { .. } => !before.recovering(),
            Event::CheckSucceeded { warning, .. } => {
                warning.is_some() && !before.recovering() && !before.warning()
            }
            _ => false,
        };
        prop_assert!(begins, "new episode number: {}", ctx());
    }
    Ok(())
}

/// One step of a run, as the runtime would produce it.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A check that starts and ends now (if none is in flight).
    Check {
        ok: bool,
        warn: bool,
    },
    /// Start a check whose result comes later.
    Begin,
    /// The result of the check in flight.
    End {
        ok: bool,
        warn: bool,
    },
    IvOk,
    IvFail,
    IvUnknown,
    MStart,
    MEnd,
    Disable,
    Enable,
    Config,
    Remove,
    /// Virtual time passes.
    Wait {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<bool>(), prop::bool::weighted(0.15)).prop_map(|(ok, warn)| Op::Check { ok, warn }),
        2 => Just(Op::Begin),
        2 => (any::<bool>(), prop::bool::weighted(0.15)).prop_map(|(ok, warn)| Op::End { ok, warn }),
        2 => Just(Op::IvOk),
        1 => Just(Op::IvFail),
        1 => Just(Op::IvUnknown),
        1 => Just(Op::MStart),
        1 => Just(Op::MEnd),
        1 => Just(Op::Disable),
        1 => Just(Op::Enable),
        1 => Just(Op::Config),
        // Rare: everything after it is ignored.
        1 => prop::bool::weighted(0.1).prop_map(|r| if r { Op::Remove } else { Op::Enable }),
        8 => prop_oneof![0..2_000u64, 0..400_000u64, Just(9 * 3600 * 1000)]
            .prop_map(|ms| Op::Wait { ms }),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let cooldown =
        prop_oneof![Just(0u32), Just(1_000), Just(60_000), Just(300_000), Just(u32::MAX)];
    (
        0..5u16,
        0..4u16,
        any::<bool>(),
        0..4u8,
        prop::array::uniform5(cooldown),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(unhealthy, healthy, iv, attempts, cooldown_ms, bypass, dispatch)| Policy {
            unhealthy,
            healthy,
            has_intervention: iv,
            recovery_max_attempts: attempts,
            cooldown_ms,
            green_bypasses_cooldown: bypass,
            dispatch: ColourSet::from_bits(dispatch),
        })
}

/// A starting state that is a plausible one (invariants hold) but with its counters near their
/// limits, so the runs cross the saturation and wrap-around points.
fn start_state() -> impl Strategy<Value = MonitorState> {
    (any::<bool>(), 0..3u16, any::<u16>(), any::<u32>()).prop_map(
        |(near_max, k, generation, seq)| {
            let mut s = MonitorState::resume(seq);
            s.generation = Generation(generation);
            s.verification_after = Generation(generation);
            if near_max {
                s.consecutive_failures = u16::MAX - k;
                s.pulse_failures = u16::MAX - k;
                s.set(flag::RECOVERING, true);
            }
            s
        },
    )
}

/// What the checker remembers of the run so far, built only from events and effects.
#[derive(Default)]
struct Model {
    disabled: bool,
    removed: bool,
    maintenance: bool,
    incident_open: Option<u32>,
    reds: HashMap<u32, u32>,
    /// Colours alerted per episode number.
    announced: HashMap<u32, ColourSet>,
    interventions: HashMap<u32, u32>,
    /// Alert send times (ms) per colour still queued or sent; cancelled ones are removed.
    sends: [Vec<u64>; Colour::COUNT],
}

struct Run {
    state: MonitorState,
    policy: Policy,
    now_ms: u64,
    in_flight: Option<Generation>,
    model: Model,
}

impl Run {
    fn event(&mut self, op: Op) -> Option<Event> {
        let check = |generation, ok: bool, warn: bool| {
            if ok {
                let warning = warn.then_some(Warning::CertificateExpiring { days_left: 7 });
                Event::CheckSucceeded { generation, warning }
            } else {
                Event::CheckFailed { generation, kind: FailureKind::Timeout }
            }
        };
        Some(match op {
            Op::Check { ok, warn } if self.in_flight.is_none() => {
                check(self.state.begin_check(self.state.generation().next()), ok, warn)
            }
            Op::Begin if self.in_flight.is_none() => {
                self.in_flight = Some(self.state.begin_check(self.state.generation().next()));
                return None;
            }
            Op::End { ok, warn } => check(self.in_flight.take()?, ok, warn),
            Op::Check { .. } | Op::Begin => return None,
            Op::IvOk => Event::InterventionSucceeded,
            Op::IvFail => Event::InterventionFailed,
            Op::IvUnknown => Event::InterventionUnknown,
            Op::MStart => Event::MaintenanceStarted,
            Op::MEnd => Event::MaintenanceEnded,
            Op::Disable => Event::Disabled,
            Op::Enable => Event::Enabled,
            Op::Config => Event::ConfigChanged,
            Op::Remove => Event::Removed,
            Op::Wait { ms } => {
                // Past MAX_NOW_MS every time is clamped to it (documented limit, year 2106
                // for a Unix clock), so cooldowns cannot be checked there.
                self.now_ms = (self.now_ms + ms).min(MAX_NOW_MS);
                return None;
            }
        })
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        let Some(event) = self.event(op) else { return Ok(()) };
        let before = self.state;
        let fx = transition(&mut self.state, &self.policy, event, self.now_ms);
        effects_match_state_change(&before, &self.state, &self.policy, event, self.now_ms, &fx)?;
        let effects = fx.as_slice();
        let ctx = || format!("{event:?} at {} -> {effects:?}\nbefore: {before:?}", self.now_ms);
        let m = &mut self.model;

        // Nothing at all after removal; nothing while disabled but the removal's own cleanup.
        if m.removed {
            prop_assert!(effects.is_empty(), "after removal: {}", ctx());
        }
        if m.disabled {
            let cleanup = |e: &Effect| {
                matches!(
                    e,
                    Effect::IncidentClosed { silent: true, .. }
                        | Effect::CancelQueuedAlerts
                        | Effect::CancelIntervention
                )
            };
            let allowed = matches!(event, Event::Removed) && effects.iter().all(cleanup);
            prop_assert!(effects.is_empty() || allowed, "while disabled: {}", ctx());
        }
        match event {
            Event::MaintenanceStarted => m.maintenance = true,
            Event::MaintenanceEnded => m.maintenance = false,
            Event::Disabled if !m.removed => m.disabled = true,
            Event::Enabled if !m.removed => m.disabled = false,
            Event::Removed => m.removed = true,
            _ => {}
        }

        for (i, effect) in effects.iter().enumerate() {
            match *effect {
                Effect::Alert { colour, incident_seq, not_before_ms, .. } => {
                    prop_assert!(not_before_ms >= self.now_ms.min(MAX_NOW_MS), "{}", ctx());
                    if m.maintenance {
                        prop_assert_eq!(colour, Colour::Gray, "in maintenance: {}", ctx());
                    }
                    prop_assert!(self.policy.dispatch.contains(colour), "no code: {}", ctx());
                    prop_assert_eq!(incident_seq.is_none(), colour == Colour::Gray);
                    let seq = incident_seq.unwrap_or(0);
                    match colour {
                        Colour::Red => {
                            // The red opens the incident: right after IncidentOpened.
                            prop_assert!(
                                i > 0
                                    && effects[i - 1]
                                        == Effect::IncidentOpened { incident_seq: seq },
                                "red without opening: {}",
                                ctx()
                            );
                            let reds = m.reds.entry(seq).or_default();
                            *reds += 1;
                            prop_assert_eq!(*reds, 1, "second red in incident: {}", ctx());
                        }
                        Colour::Green => {
                            let seen = m.announced.get(&seq).copied().unwrap_or_default();
                            prop_assert!(
                                seen.contains(Colour::Yellow)
                                    || seen.contains(Colour::Red)
                                    || seen.contains(Colour::Cyan),
                                "green for an unannounced episode: {}",
                                ctx()
                            );
                            // A green never overtakes an alert still waiting.
                            let waiting = m
                                .sends
                                .iter()
                                .flatten()
                                .copied()
                                .filter(|&at| at > self.now_ms)
                                .max();
                            if let Some(waiting) = waiting {
                                prop_assert!(
                                    not_before_ms >= waiting,
                                    "green overtakes: {}",
                                    ctx()
                                );
                            }
                        }
                        _ => {}
                    }
                    let set = m.announced.entry(seq).or_default();
                    *set = set.with(colour);
                    let sends = &mut m.sends[colour.index()];
                    if sends.last() != Some(&not_before_ms) {
                        sends.push(not_before_ms);
                    }
                }
                Effect::IncidentOpened { incident_seq } => {
                    prop_assert_eq!(m.incident_open, None, "incident opened twice: {}", ctx());
                    m.incident_open = Some(incident_seq);
                }
                Effect::IncidentClosed { incident_seq, .. } => {
                    prop_assert_eq!(m.incident_open, Some(incident_seq), "{}", ctx());
                    m.incident_open = None;
                }
                Effect::StartIntervention { attempt } => {
                    prop_assert!(self.policy.has_intervention, "{}", ctx());
                    prop_assert!(!m.maintenance, "intervention in maintenance: {}", ctx());
                    let seq = self.state.incident_seq;
                    let n = m.interventions.entry(seq).or_default();
                    *n += 1;
                    prop_assert_eq!(u32::from(attempt), *n, "{}", ctx());
                    prop_assert!(*n <= u32::from(self.policy.recovery_max_attempts.max(1)));
                }
                Effect::CancelQueuedAlerts => {
                    let now = self.now_ms;
                    for sends in &mut m.sends {
                        sends.retain(|&at| at <= now);
                    }
                }
                Effect::CancelIntervention => {}
            }
        }

        // Cooldowns: sends of one colour are at least its cooldown apart (green exempt when
        // it bypasses).
        for colour in Colour::ALL {
            if colour == Colour::Green && self.policy.green_bypasses_cooldown {
                continue;
            }
            let min_gap_ms =
                u64::from(self.policy.cooldown_ms[colour.index()].min(MAX_COOLDOWN_MS));
            let sends = &m.sends[colour.index()];
            for pair in sends.windows(2) {
                prop_assert!(
                    pair[1] >= pair[0] + min_gap_ms,
                    "{colour} sent at {} and {}: {}",
                    pair[0],
                    pair[1],
                    ctx()
                );
            }
        }

        // The state the function keeps agrees with what its effects said.
        prop_assert_eq!(self.state.incident_open(), m.incident_open.is_some(), "{}", ctx());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Red at most once per incident; green only after a yellow, red or cyan of its episode;
    /// nothing while disabled or after removal; nothing but gray inside maintenance; cooldowns
    /// respected; no overflow and no panic.
    #[test]
    fn rules_hold_over_random_runs(
        policy in policy(),
        state in start_state(),
        start_ms in prop_oneof![Just(0u64), 0..u64::from(u32::MAX), Just(MAX_NOW_MS - 1000)],
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let mut run = Run { state, policy, now_ms: start_ms, in_flight: None, model: Model::default() };
        for op in ops {
            run.step(op)?;
        }
        // Never stuck (the Go version could strand a monitor): whatever happened, once the
        // monitor is enabled, out of maintenance, its intervention has answered, and `healthy`
        // checks pass, it has recovered and closed its incident.
        if !run.model.removed {
            let healthy = run.policy.healthy.clamp(1, MAX_THRESHOLD);
            for op in [Op::End { ok: true, warn: false }, Op::Enable, Op::MEnd, Op::IvFail] {
                run.step(op)?;
            }
            for _ in 0..healthy {
                run.step(Op::Check { ok: true, warn: false })?;
            }
            let st = &run.state;
            prop_assert!(
                !st.recovering() && !st.incident_open() && !st.intervention_pending() && !st.warning(),
                "stuck: {st:?}"
            );
            prop_assert_eq!(run.model.incident_open, None);
        }
    }

    /// Any events at all, in any order, with any generations, policy values and times (even a
    /// clock that goes backwards, which the runtime never does): the function never panics,
    /// and every transition's effects say exactly how the state changed.
    #[test]
    fn never_panics_on_arbitrary_input(
        // Small values half the time, so thresholds are reached and the rules run; any value
        // the other half, so the clamps do.
        unhealthy in prop_oneof![0..4u16, any::<u16>()],
        healthy in prop_oneof![0..4u16, any::<u16>()],
        iv in any::<bool>(),
        attempts in prop_oneof![0..4u8, any::<u8>()],
        cooldown_ms in prop::array::uniform5(any::<u32>()),
        dispatch in any::<u8>(),
        events in prop::collection::vec((0..11u8, any::<u16>(), any::<bool>(), any::<u64>()), 0..200),
    ) {
        let policy = Policy {
            unhealthy,
            healthy,
            has_intervention: iv,
            recovery_max_attempts: attempts,
            cooldown_ms,
            green_bypasses_cooldown: dispatch & 0x80 != 0,
            dispatch: ColourSet::from_bits(dispatch),
        };
        let mut state = MonitorState::new();
        for (kind, generation, flag, now_ms) in events {
            let generation = Generation::new(generation);
            let event = match kind {
                0 => Event::CheckFailed { generation, kind: FailureKind::Dns },
                1 => Event::CheckSucceeded {
                    generation,
                    warning: flag.then_some(Warning::Slow { latency_ms: 900 }),
                },
                2 => Event::InterventionSucceeded,
                3 => Event::InterventionFailed,
                4 => Event::InterventionUnknown,
                5 => Event::MaintenanceStarted,
                6 => Event::MaintenanceEnded,
                7 => Event::Disabled,
                8 => Event::Enabled,
                9 => Event::ConfigChanged,
                _ if flag => Event::Removed,
                _ => Event::CheckFailed { generation, kind: FailureKind::Timeout },
            };
            let before = state;
            let fx = transition(&mut state, &policy, event, now_ms);
            effects_match_state_change(&before, &state, &policy, event, now_ms, &fx)?;
        }
    }
}
