//! Maintenance windows: recurring ones, a 5-field cron for when each window starts, a duration,
//! and an IANA timezone (default UTC); and one-off ones, a `start` and an `end` in RFC 3339
//! (which carry their own UTC offset). Parsed at load so a bad cron, zone or time is reported
//! with its line.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

#[derive(Clone, Debug)]
pub struct MaintenanceWindow {
    /// The cron text as written (5 fields: minute hour day-of-month month day-of-week); empty
    /// for a one-off window.
    pub cron: String,
    /// The length of each window (of the one window, for a one-off).
    pub duration_ms: u64,
    /// The zone the cron is read in (UTC for a one-off window).
    pub timezone: Tz,
    /// `None` for a one-off window.
    schedule: Option<Cron>,
    /// A one-off window's start, Unix ms; it ends `duration_ms` later.
    once_start_ms: Option<i64>,
}

impl PartialEq for MaintenanceWindow {
    fn eq(&self, other: &Self) -> bool {
        self.cron == other.cron
            && self.duration_ms == other.duration_ms
            && self.timezone == other.timezone
            && self.once_start_ms == other.once_start_ms
    }
}

/// An RFC 3339 time (`2026-03-01T02:00:00Z`, `2026-03-01T03:00:00+01:00`) as Unix ms.
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text.trim()).map(|t| t.timestamp_millis()).map_err(|e| {
        format!("'{text}' is not an RFC 3339 time ({e}); write e.g. 2026-03-01T02:00:00Z")
    })
}

/// Unix ms as RFC 3339 in UTC, to the millisecond: what [`parse_rfc3339_ms`] reads back.
pub fn format_rfc3339_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl MaintenanceWindow {
    /// A one-off window from `start_ms` to `end_ms` (Unix ms, end exclusive).
    pub fn once(start_ms: i64, end_ms: i64) -> Result<Self, String> {
        if end_ms <= start_ms {
            return Err(format!(
                "the window ends ({}) before it starts ({})",
                format_rfc3339_ms(end_ms),
                format_rfc3339_ms(start_ms)
            ));
        }
        Ok(MaintenanceWindow {
            cron: String::new(),
            duration_ms: end_ms.abs_diff(start_ms),
            timezone: Tz::UTC,
            schedule: None,
            once_start_ms: Some(start_ms),
        })
    }

    /// A one-off window's `(start_ms, end_ms)`; `None` for a cron window.
    pub fn once_bounds(&self) -> Option<(i64, i64)> {
        let start = self.once_start_ms?;
        Some((start, start.saturating_add(i64::try_from(self.duration_ms).ok()?)))
    }

    /// Parse; errors are messages for the diagnostic (`Err((is_cron, message))`).
    pub fn new(cron: &str, duration_ms: u64, timezone: &str) -> Result<Self, (bool, String)> {
        let fields = cron.split_whitespace().count();
        if fields != 5 {
            return Err((
                true,
                format!(
                    "cron '{cron}' has {fields} fields; expected 5 (minute hour day month weekday)"
                ),
            ));
        }
        let schedule =
            Cron::new(cron).parse().map_err(|e| (true, format!("bad cron '{cron}': {e}")))?;
        let timezone: Tz =
            timezone.parse().map_err(|_| (false, format!("unknown timezone '{timezone}'")))?;
        Ok(MaintenanceWindow {
            cron: cron.to_string(),
            duration_ms,
            timezone,
            schedule: Some(schedule),
            once_start_ms: None,
        })
    }

    /// The window containing `after_unix_ms`, else the next to start: `(start_ms, end_ms)`.
    /// A window active at `t` started in `(t - duration, t]`, so searching for the first
    /// start after `t - duration` finds it, or else the next one.
    /// A one-off window is its own only window until it ends, then there is none.
    pub fn next_window(&self, after_unix_ms: i64) -> Option<(i64, i64)> {
        if let Some((start, end)) = self.once_bounds() {
            return (after_unix_ms < end).then_some((start, end));
        }
        let schedule = self.schedule.as_ref()?;
        let duration_ms = i64::try_from(self.duration_ms).ok()?;
        let from_ms = after_unix_ms.saturating_sub(duration_ms);
        let from: DateTime<Utc> = Utc.timestamp_millis_opt(from_ms).single()?;
        let from_tz = from.with_timezone(&self.timezone);
        let start = schedule.find_next_occurrence(&from_tz, false).ok()?;
        let start_ms = start.timestamp_millis();
        Some((start_ms, start_ms.saturating_add(duration_ms)))
    }

    /// Whether `at_unix_ms` is inside a window.
    pub fn contains(&self, at_unix_ms: i64) -> bool {
        self.next_window(at_unix_ms).is_some_and(|(s, e)| s <= at_unix_ms && at_unix_ms < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp_millis()
    }

    #[test]
    fn windows_in_utc_and_zones() {
        // Daily at 02:00 for 1 hour.
        let w = MaintenanceWindow::new("0 2 * * *", 3_600_000, "UTC").unwrap();
        assert_eq!(
            w.next_window(ms(2026, 1, 1, 0, 0)),
            Some((ms(2026, 1, 1, 2, 0), ms(2026, 1, 1, 3, 0)))
        );
        assert_eq!(
            w.next_window(ms(2026, 1, 1, 2, 30)),
            Some((ms(2026, 1, 1, 2, 0), ms(2026, 1, 1, 3, 0)))
        );
        assert!(w.contains(ms(2026, 1, 1, 2, 59)));
        assert!(!w.contains(ms(2026, 1, 1, 3, 0)));
        assert_eq!(w.next_window(ms(2026, 1, 1, 3, 0)).unwrap().0, ms(2026, 1, 2, 2, 0));
        // 02:00 in Paris (UTC+1 in January) is 01:00 UTC.
        let p = MaintenanceWindow::new("0 2 * * *", 60_000, "Europe/Paris").unwrap();
        assert_eq!(p.next_window(ms(2026, 1, 1, 0, 0)).unwrap().0, ms(2026, 1, 1, 1, 0));
    }

    #[test]
    fn one_off_windows_under_a_virtual_clock() {
        let start = parse_rfc3339_ms("2026-03-01T03:00:00+01:00").unwrap();
        let end = parse_rfc3339_ms("2026-03-01T04:30:00Z").unwrap();
        assert_eq!(start, ms(2026, 3, 1, 2, 0));
        let w = MaintenanceWindow::once(start, end).unwrap();
        assert_eq!(w.duration_ms, 150 * 60_000);
        // Before, at the start, inside, at the end (exclusive), after: the clock is passed in.
        assert_eq!(w.next_window(ms(2026, 2, 1, 0, 0)), Some((start, end)));
        assert!(!w.contains(start - 1));
        assert!(w.contains(start) && w.contains(end - 1));
        assert!(!w.contains(end));
        assert_eq!(w.next_window(end), None);
        assert_eq!(w.next_window(ms(2027, 1, 1, 0, 0)), None);
        // Written back to the millisecond, read back the same.
        assert_eq!(format_rfc3339_ms(start), "2026-03-01T02:00:00.000Z");
        assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(end + 7)), Ok(end + 7));
        assert!(MaintenanceWindow::once(end, start).unwrap_err().contains("ends"));
        assert!(MaintenanceWindow::once(start, start).is_err());
        assert!(parse_rfc3339_ms("2026-03-01 02:00").unwrap_err().contains("RFC 3339"));
        // A one-off window is not a cron window of the same length.
        let cron = MaintenanceWindow::new("0 2 1 3 *", 150 * 60_000, "UTC").unwrap();
        assert_ne!(w, cron);
        assert_eq!(cron.next_window(ms(2026, 2, 1, 0, 0)), Some((start, end)));
    }

    #[test]
    fn bad_cron_and_zone() {
        assert!(matches!(MaintenanceWindow::new("0 2 * *", 1, "UTC"), Err((true, _))));
        assert!(matches!(MaintenanceWindow::new("99 2 * * *", 1, "UTC"), Err((true, _))));
        assert!(matches!(MaintenanceWindow::new("0 2 * * *", 1, "Mars/Olympus"), Err((false, _))));
    }
}
