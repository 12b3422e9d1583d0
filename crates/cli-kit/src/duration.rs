//! Durations as people type them (`500ms`, `30s`, `5m`, `1h`, `1m30s`) and as they read them (`20m 14s`).

use std::time::Duration;

/// Parses `500ms`, `30s`, `5m`, `1h`, `1.5s`, `1m30s`. A bare number is refused: the unit matters.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; use e.g. 500ms, 30s, 5m or 1h".into());
    }
    if t.starts_with('-') {
        return Err(format!("`{text}` is negative; use a positive duration such as 30s"));
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("`{text}` is not a duration; use e.g. 500ms, 30s, 5m or 1h"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{text}` is not a duration; use e.g. 500ms, 30s, 5m or 1h"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "" => return Err(format!("`{text}` has no unit; write e.g. {value}s or {value}ms")),
            other => return Err(format!("`{text}`: unknown unit `{other}`; use ms, s, m or h")),
        };
        total += value * scale;
    }
    if !total.is_finite() || total > 366.0 * 86_400.0 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Like [`parse_duration`], but zero is refused too (for timeouts and intervals).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    // A bare 0 would otherwise be told to write `0s`, which is refused here too.
    if text.trim().parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Err(format!("`{text}` must be greater than zero; use e.g. 500ms, 30s or 5m"));
    }
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` must be greater than zero"));
    }
    Ok(d)
}

/// `850ms`, `4.2s`, `20m 14s`, `2h 5m`, `3d 4h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (d.as_millis() + 50) / 100;
        return if tenths % 10 == 0 {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let (d_, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (d_, h, m, s) {
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d_, 0, _, _) => format!("{d_}d"),
        (d_, h, _, _) => format!("{d_}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_type() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_garbage_negative_zero_and_bare_numbers() {
        for bad in ["", "abc", "-5s", "10", "5 parsecs", "s", "1x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_positive_duration("0s").unwrap_err().contains("greater than zero"));
        // What a refusal suggests is never itself refused.
        let zero = parse_positive_duration("0").unwrap_err();
        assert!(zero.contains("greater than zero") && !zero.contains("e.g. 0s"), "{zero}");
        assert!(parse_duration("0").unwrap_err().contains("write e.g. 0s"));
        assert!(parse_duration("0s").is_ok());
    }

    #[test]
    fn prints_like_a_person_would() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(20 * 60 + 14)), "20m 14s");
        assert_eq!(format_duration(Duration::from_secs(2 * 3600 + 5 * 60)), "2h 5m");
        assert_eq!(format_duration(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3d 4h");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }
}
