//! Maintenance windows: a 5-field cron for when each window starts, a duration, and an IANA
//! timezone (default UTC). Parsed at load so a bad cron or zone is reported with its line.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

#[derive(Clone, Debug)]
pub struct MaintenanceWindow {
    /// The cron text as written (5 fields: minute hour day-of-month month day-of-week).
    pub cron: String,
    pub duration_ms: u64,
    pub timezone: Tz,
    schedule: Cron,
}

impl PartialEq for MaintenanceWindow {
    fn eq(&self, other: &Self) -> bool {
        self.cron == other.cron
            && self.duration_ms == other.duration_ms
            && self.timezone == other.timezone
    }
}

impl MaintenanceWindow {
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
        Ok(MaintenanceWindow { cron: cron.to_string(), duration_ms, timezone, schedule })
    }

    /// The window containing `after_unix_ms`, else the next to start: `(start_ms, end_ms)`.
    /// A window active at `t` started in `(t - duration, t]`, so searching for the first
    /// start after `t - duration` finds it, or else the next one.
    pub fn next_window(&self, after_unix_ms: i64) -> Option<(i64, i64)> {
        let duration_ms = i64::try_from(self.duration_ms).ok()?;
        let from_ms = after_unix_ms.saturating_sub(duration_ms);
        let from: DateTime<Utc> = Utc.timestamp_millis_opt(from_ms).single()?;
        let from_tz = from.with_timezone(&self.timezone);
        let start = self.schedule.find_next_occurrence(&from_tz, false).ok()?;
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
    fn bad_cron_and_zone() {
        assert!(matches!(MaintenanceWindow::new("0 2 * *", 1, "UTC"), Err((true, _))));
        assert!(matches!(MaintenanceWindow::new("99 2 * * *", 1, "UTC"), Err((true, _))));
        assert!(matches!(MaintenanceWindow::new("0 2 * * *", 1, "Mars/Olympus"), Err((false, _))));
    }
}
