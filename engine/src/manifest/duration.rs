//! Go duration strings (`30s`, `1m30s`, `500ms`, `1.5h`), as Go's `time.ParseDuration` reads
//! them, so Go CPRA manifests load unchanged.

/// Parse a Go duration into nanoseconds. Negative durations are rejected (a manifest never
/// needs one). Units: ns, us, µs, μs, ms, s, m, h. `0` alone is allowed (and is 0).
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(0);
    }
    if s.starts_with('-') {
        return Err(format!("negative duration '{text}'"));
    }
    let bytes = s.as_bytes();
    // Fast path, nearly every value in a manifest: digits then one ASCII unit (`30s`). The
    // result is what the loop below computes for it; 18 digits cannot overflow the u128.
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if (1..=18).contains(&digits) {
        let unit_ns: Option<u128> = match &bytes[digits..] {
            b"ns" => Some(1),
            b"us" => Some(1_000),
            b"ms" => Some(1_000_000),
            b"s" => Some(1_000_000_000),
            b"m" => Some(60_000_000_000),
            b"h" => Some(3_600_000_000_000),
            _ => None,
        };
        if let Some(unit_ns) = unit_ns {
            let n = bytes[..digits].iter().fold(0u128, |n, &d| n * 10 + u128::from(d - b'0'));
            return u64::try_from(n * unit_ns).map_err(|_| format!("'{text}' is too large"));
        }
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: f64 = 0.0;
    let mut total_ns: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[start..i];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!(
                "'{text}' is not a duration: expected a number at '{}'",
                &s[start..]
            ));
        }
        let ustart = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = &s[ustart..i];
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("'{text}' has a number without a unit")),
            other => return Err(format!("'{text}' has an unknown unit '{other}'")),
        };
        if let Some((int, frac)) = number.split_once('.') {
            let int: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| format!("'{text}' is too large"))?
            };
            total_ns = total_ns.saturating_add(int.saturating_mul(unit_ns));
            if !frac.is_empty() {
                let f: f64 = format!("0.{frac}")
                    .parse()
                    .map_err(|_| format!("'{text}' is not a duration"))?;
                total += f * unit_ns as f64;
            }
        } else {
            let n: u128 = number.parse().map_err(|_| format!("'{text}' is too large"))?;
            total_ns = total_ns.saturating_add(n.saturating_mul(unit_ns));
        }
    }
    let ns = total_ns.saturating_add(total.round() as u128);
    u64::try_from(ns).map_err(|_| format!("'{text}' is too large"))
}

/// Render milliseconds the way Go would write them, e.g. `1m30s`, `500ms`.
pub fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) && ms < 1000 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms / 1000) % 60;
    let rest = ms % 1000;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if rest > 0 {
        out.push_str(&format!("{s}.{rest:03}s"));
    } else if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse_go_duration("100us"), Ok(100_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("0s"), Ok(0));
        assert_eq!(parse_go_duration(" 60s "), Ok(60_000_000_000));
        assert_eq!(parse_go_duration("+5m"), Ok(300_000_000_000));
        assert_eq!(parse_go_duration("5000000h"), Ok(18_000_000_000_000_000_000));
        assert!(parse_go_duration("6000000h").unwrap_err().contains("too large"));
        assert!(parse_go_duration("999999999999999999h").unwrap_err().contains("too large"));
        assert!(parse_go_duration("9999999999999999999h").unwrap_err().contains("too large"));
        for bad in ["", "30", "s", "-1s", "1x", "1..5s", "abc", "1s2"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [500, 1000, 90_000, 3_600_000, 5_400_500, 1] {
            let text = format_ms(ms);
            assert_eq!(parse_go_duration(&text).unwrap() / 1_000_000, ms, "{text}");
        }
    }
}
