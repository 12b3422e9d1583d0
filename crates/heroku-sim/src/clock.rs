//! The simulator's own timestamps, written as the platform writes them: API fields as RFC 3339
//! in UTC without fractions (`2026-11-22T06:00:01Z`), log lines with microseconds and an offset
//! (`2026-11-22T06:00:01.123456+00:00`). Its own code, deliberately not the API client's: a
//! format both sides got wrong the same way would pass every test.

use std::time::{SystemTime, UNIX_EPOCH};

/// An API timestamp.
pub fn api_time(t: SystemTime) -> String {
    let (date, secs_of_day) = date_of(whole_seconds(t));
    format!("{date}T{}Z", hms(secs_of_day))
}

/// A log line's timestamp.
pub fn log_time(t: SystemTime) -> String {
    let micros = t.duration_since(UNIX_EPOCH).map(|d| d.subsec_micros()).unwrap_or(0);
    let (date, secs_of_day) = date_of(whole_seconds(t));
    format!("{date}T{}.{micros:06}+00:00", hms(secs_of_day))
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hms(s: u64) -> String {
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// `YYYY-MM-DD` of a count of seconds since 1970, by walking years and months (the simulator's
/// times are recent: a few dozen steps).
fn date_of(secs: u64) -> (String, u64) {
    let mut days = secs / 86_400;
    let mut year = 1970u64;
    loop {
        let in_year = if is_leap(year) { 366 } else { 365 };
        if days < in_year {
            break;
        }
        days -= in_year;
        year += 1;
    }
    let lengths = [31, if is_leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    (format!("{year:04}-{:02}-{:02}", month + 1, days + 1), secs % 86_400)
}

fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    #[test]
    fn known_instants_are_written_as_the_platform_writes_them() {
        assert_eq!(api_time(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(api_time(at(951_782_400, 0)), "2000-02-29T00:00:00Z");
        assert_eq!(api_time(at(951_868_799, 0)), "2000-02-29T23:59:59Z");
        assert_eq!(api_time(at(4_107_542_399, 0)), "2100-02-28T23:59:59Z");
        assert_eq!(api_time(at(1_796_536_801, 500_000)), "2026-12-06T06:00:01Z");
        assert_eq!(log_time(at(1_796_536_801, 123_456)), "2026-12-06T06:00:01.123456+00:00");
        assert_eq!(log_time(at(1_796_536_801, 7)), "2026-12-06T06:00:01.000007+00:00");
    }
}
