//! Per-colour alert cooldowns in 14 bytes of a monitor's hot state.
//!
//! The rule (docs/state-machine.md): a colour queued within `cooldown` of its last send is delayed
//! to the end of the cooldown, coalesced into one. We keep, per colour, the time of its last
//! (possibly future, i.e. still waiting) send.
//!
//! Why this encoding: five `u32`/`u64` timestamps would not fit the 32-byte budget of
//! `MonitorState`. A send time only matters while it is within one cooldown of now, and a
//! cooldown is at most [`MAX_COOLDOWN_MS`], so every live entry lies in
//! `[now - MAX_COOLDOWN, now + MAX_COOLDOWN]`. We store one `u32` base (whole seconds) and a
//! `u16` offset in seconds per colour; when an offset would not fit we move the base to
//! `now - MAX_COOLDOWN` and drop the entries older than that (they can no longer delay
//! anything). Reads are exact, with no wrap-around ambiguity, however long a monitor is idle.
//!
//! Resolution is one second, rounded so that a cooldown is never shortened: a send time is
//! rounded up to the next whole second before it is stored. A delayed alert's `not_before_ms`
//! is a whole second; an immediate one keeps the exact `now_ms`.

use crate::colour::Colour;

/// The longest cooldown honoured; longer ones are clamped to it. Eight hours: longer than any
/// sensible repeat interval for a page, and two of them (past and future entries) must fit in
/// a `u16` of seconds (65 535 s), which 2 × 28 800 s does with room to spare.
pub const MAX_COOLDOWN_MS: u32 = 8 * 3600 * 1000;
const MAX_COOLDOWN_S: u64 = (MAX_COOLDOWN_MS / 1000) as u64;

/// Times are kept as whole seconds in a `u32` base: `now_ms` is clamped below this (year 2106 if
/// the caller's clock is Unix time; 136 years if it counts from process start).
pub const MAX_NOW_MS: u64 = (u32::MAX as u64 - 2 * MAX_COOLDOWN_S) * 1000;

/// Offset value meaning "no send recorded for this colour".
const NONE: u16 = u16::MAX;

const _: () = assert!(2 * MAX_COOLDOWN_S < NONE as u64, "live entries must fit an offset");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cooldowns {
    /// The base in whole seconds, as two `u16` halves so the struct has 2-byte alignment and
    /// packs into `MonitorState` without padding.
    base_s: [u16; 2],
    /// Per colour (by `Colour::index`): last send time in seconds after the base, or `NONE`.
    last_off_s: [u16; Colour::COUNT],
}

/// When an alert may go out, as decided by [`Cooldowns::schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SendAt {
    pub not_before_ms: u64,
    /// Later than now because of the colour's own cooldown or an earlier waiting alert.
    pub delayed: bool,
    /// Joined the send moment of an alert of the same colour that is still waiting. Of the
    /// same incident, it is the same alert; of another, a separate one due at the same
    /// moment (the caller's `incident_seq` tells them apart).
    pub coalesced: bool,
}

/// `ms` rounded up to whole seconds.
fn ceil_s(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// A colour's cooldown in whole seconds (rounded up so it is never shortened), clamped.
pub(super) fn cooldown_s(cooldown_ms: u32) -> u64 {
    ceil_s(u64::from(cooldown_ms.min(MAX_COOLDOWN_MS)))
}

impl Cooldowns {
    pub const fn new() -> Cooldowns {
        Cooldowns { base_s: [0, 0], last_off_s: [NONE; Colour::COUNT] }
    }

    fn base(&self) -> u64 {
        u64::from(self.base_s[0]) << 16 | u64::from(self.base_s[1])
    }

    fn set_base(&mut self, base: u64) {
        debug_assert!(base <= u64::from(u32::MAX));
        self.base_s = [(base >> 16) as u16, base as u16];
    }

    /// The last (or waiting) send of `colour`, in whole seconds.
    fn last(&self, colour: Colour) -> Option<u64> {
        match self.last_off_s[colour.index()] {
            NONE => None,
            off => Some(self.base() + u64::from(off)),
        }
    }

    fn set(&mut self, colour: Colour, at_s: u64, now_s: u64) {
        debug_assert!(at_s >= now_s, "{at_s} vs now {now_s}");
        if at_s < self.base() || at_s - self.base() >= u64::from(NONE) {
            self.rebase(now_s);
        }
        let off = at_s.saturating_sub(self.base());
        // After a rebase `off <= 2 * MAX_COOLDOWN_S`, so this `min` only guards against a clock
        // that went backwards; the const assertion above proves the normal case.
        self.last_off_s[colour.index()] = off.min(u64::from(NONE) - 1) as u16;
    }

    /// Moves the base to `now - MAX_COOLDOWN`, dropping entries older than that: an entry that
    /// old is past every cooldown, so forgetting it changes no decision.
    fn rebase(&mut self, now_s: u64) {
        let new_base = now_s.saturating_sub(MAX_COOLDOWN_S);
        let old_base = self.base();
        for off in &mut self.last_off_s {
            if *off == NONE {
                continue;
            }
            let at = old_base + u64::from(*off);
            *off =
                if at < new_base { NONE } else { (at - new_base).min(u64::from(NONE) - 1) as u16 };
        }
        self.set_base(new_base);
    }

    /// The latest send of any colour that may still be waiting at `now_ms` (in ms). Judged in
    /// milliseconds, so an alert sent at once this second counts too: ordering errs on the
    /// side of waiting (by under a second), never of overtaking.
    fn latest_waiting_ms(&self, now_ms: u64) -> Option<u64> {
        Colour::ALL
            .into_iter()
            .filter_map(|c| self.last(c))
            .map(|at_s| at_s * 1000)
            .filter(|&at_ms| at_ms > now_ms)
            .max()
    }

    /// Decides when an alert of `colour` queued at `now_ms` may be sent and records it.
    /// Alerts that coalesce get the same `not_before_ms`, so the delivery layer's
    /// "not queued twice" key is (monitor, colour, incident, `not_before_ms`): a new
    /// incident's alert is delayed to the same moment as a waiting one of an older incident,
    /// never merged into it (docs/state-machine.md).
    ///
    /// `cooldown_ms == None` means the colour bypasses its cooldown (green by default).
    /// With `after_waiting`, the alert never goes before an alert of the same monitor that is
    /// still waiting: a green must not overtake the red it resolves. (Only green asks for it:
    /// a red must not wait behind a yellow that is merely in its cooldown.) This ordering rule
    /// is ours: docs/state-machine.md is silent on it.
    pub fn schedule(
        &mut self,
        colour: Colour,
        cooldown_ms: Option<u32>,
        after_waiting: bool,
        now_ms: u64,
    ) -> SendAt {
        let now_ms = now_ms.min(MAX_NOW_MS);
        let now_s = ceil_s(now_ms);
        let mut coalesced = false;
        let own_ms = match (self.last(colour), cooldown_ms) {
            (_, None) | (None, _) => now_ms,
            // Still waiting: join it. Judged in whole seconds, so an alert sent at once earlier
            // in this second (stored rounded up) is never mistaken for a waiting one; the cost
            // is that in the last second before a waiting alert goes, a new one is scheduled a
            // cooldown later instead of joining it (never sooner).
            (Some(last), Some(_)) if last > now_s => {
                coalesced = true;
                last * 1000
            }
            (Some(last), Some(cd_ms)) => now_ms.max((last + cooldown_s(cd_ms)) * 1000),
        };
        let at_ms = match self.latest_waiting_ms(now_ms) {
            Some(waiting_ms) if after_waiting && waiting_ms > own_ms => {
                if coalesced {
                    // It cannot join the waiting one of its colour (that one goes before the
                    // alert it must follow), so it is a separate send: a cooldown after it.
                    coalesced = false;
                    let cd_s = cooldown_ms.map_or(0, cooldown_s);
                    waiting_ms.max(own_ms + cd_s * 1000)
                } else {
                    waiting_ms
                }
            }
            _ => own_ms,
        };
        self.set(colour, ceil_s(at_ms), now_s);
        SendAt { not_before_ms: at_ms, delayed: at_ms > now_ms, coalesced }
    }

    /// Each colour's last (or waiting) send in ms of the caller's clock, for the journal.
    pub fn marks_ms(&self) -> [Option<u64>; Colour::COUNT] {
        Colour::ALL.map(|c| self.last(c).map(|at_s| at_s * 1000))
    }

    /// Cooldowns as a restarted process continues them: `marks_ms` are last sends in ms of
    /// this process's clock (converted by the caller from the journal's Unix times), `now_ms`
    /// is now on it. A mark older than every cooldown can delay nothing and is dropped; one
    /// in the future (an alert still waiting) is kept, clamped to a cooldown ahead. Marks are
    /// rounded up to whole seconds, so a cooldown is never shortened.
    pub fn restored(marks_ms: [Option<u64>; Colour::COUNT], now_ms: u64) -> Cooldowns {
        let now_ms = now_ms.min(MAX_NOW_MS);
        let now_s = ceil_s(now_ms);
        let mut c = Cooldowns::new();
        c.set_base(now_s.saturating_sub(MAX_COOLDOWN_S));
        for colour in Colour::ALL {
            let Some(at_ms) = marks_ms[colour.index()] else { continue };
            let at_s = ceil_s(at_ms).min(now_s + MAX_COOLDOWN_S);
            if at_s >= c.base() {
                c.last_off_s[colour.index()] = (at_s - c.base()) as u16;
            }
        }
        c
    }

    /// The queued alerts were dropped: a colour whose send was still waiting never went out, so
    /// its last real send is one cooldown before the waiting time (the waiting time was set to
    /// at least that). Putting it back keeps the next alert from being delayed by an alert
    /// that was never sent.
    pub fn cancel_waiting(&mut self, now_ms: u64, cooldown_ms: impl Fn(Colour) -> u32) {
        let now_s = ceil_s(now_ms.min(MAX_NOW_MS));
        for colour in Colour::ALL {
            if let Some(at) = self.last(colour) {
                if at > now_s {
                    let back = at.saturating_sub(cooldown_s(cooldown_ms(colour))).min(now_s);
                    let base = self.base();
                    self.last_off_s[colour.index()] = if back < base {
                        NONE
                    } else {
                        (back - base).min(u64::from(NONE) - 1) as u16
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const CD: Option<u32> = Some(5 * 60_000);

    #[test]
    fn first_send_is_immediate_then_delayed_to_end_of_cooldown() {
        let mut c = Cooldowns::new();
        let t = 1_000_000;
        assert_eq!(
            c.schedule(Colour::Red, CD, false, t),
            SendAt { not_before_ms: t, delayed: false, coalesced: false }
        );
        assert_eq!(
            c.schedule(Colour::Red, CD, false, t + 2 * MIN),
            SendAt { not_before_ms: t + 5 * MIN, delayed: true, coalesced: false }
        );
        // A third red while the second waits joins it.
        assert_eq!(
            c.schedule(Colour::Red, CD, false, t + 3 * MIN),
            SendAt { not_before_ms: t + 5 * MIN, delayed: true, coalesced: true }
        );
        // After the waiting one went out, the next waits a full cooldown after it.
        assert_eq!(c.schedule(Colour::Red, CD, false, t + 6 * MIN).not_before_ms, t + 10 * MIN);
        assert_eq!(c.schedule(Colour::Red, CD, false, t + 16 * MIN).not_before_ms, t + 16 * MIN);
    }

    #[test]
    fn cooldown_is_never_shortened_by_rounding() {
        let mut c = Cooldowns::new();
        let t = 1_000_400; // not a whole second
        assert_eq!(c.schedule(Colour::Yellow, CD, false, t).not_before_ms, t);
        let next = c.schedule(Colour::Yellow, CD, false, t + 1).not_before_ms;
        assert!(next >= t + 5 * MIN && next < t + 5 * MIN + 1000, "{next}");
    }

    #[test]
    fn bypass_and_ordering() {
        let mut c = Cooldowns::new();
        let t = 0;
        c.schedule(Colour::Red, CD, false, t);
        c.schedule(Colour::Green, None, true, t + MIN);
        let red = c.schedule(Colour::Red, CD, false, t + 2 * MIN);
        assert_eq!(red.not_before_ms, t + 5 * MIN);
        // A green queued while that red waits must not overtake it.
        let green = c.schedule(Colour::Green, None, true, t + 3 * MIN);
        assert_eq!(green, SendAt { not_before_ms: t + 5 * MIN, delayed: true, coalesced: false });
    }

    #[test]
    fn long_idle_and_huge_clocks_are_exact() {
        let mut c = Cooldowns::new();
        let day = 24 * 60 * MIN;
        let mut t = 1_700_000_000_000; // Unix ms
        for _ in 0..50 {
            assert_eq!(c.schedule(Colour::Red, CD, false, t).not_before_ms, t, "idle {t}");
            assert_eq!(c.schedule(Colour::Red, CD, false, t + MIN).not_before_ms, t + 5 * MIN);
            t += 3 * day + 17_000;
        }
        assert_eq!(c.schedule(Colour::Red, CD, false, u64::MAX).not_before_ms, MAX_NOW_MS);
    }

    #[test]
    fn cancel_restores_last_real_send() {
        let mut c = Cooldowns::new();
        c.schedule(Colour::Red, CD, false, 0);
        assert_eq!(c.schedule(Colour::Red, CD, false, 2 * MIN).not_before_ms, 5 * MIN);
        c.cancel_waiting(3 * MIN, |_| 5 * 60_000);
        // The waiting red was dropped; the next one still honours the real send at 0.
        assert_eq!(c.schedule(Colour::Red, CD, false, 4 * MIN).not_before_ms, 5 * MIN);
        // Only green waits for other colours: a yellow never sent goes at once.
        assert_eq!(c.schedule(Colour::Yellow, CD, false, 4 * MIN).not_before_ms, 4 * MIN);
    }
}
