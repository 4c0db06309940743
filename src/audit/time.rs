//! Timestamps for audit records and custody records: RFC 3339 in UTC, so logs from machines in
//! different time zones sort and compare as text, and a person reads them without a converter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::DateTime;

/// Now, as `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds: several uses can fall in one second).
pub fn now_millis() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_millis(since)
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ` (custody records: seconds are plenty).
pub fn now_seconds() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format_seconds(since.as_secs())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_seconds(secs: u64) -> String {
    match DateTime::from_unix_duration(Duration::from_secs(secs)) {
        Ok(dt) => dt.to_string(),
        Err(_) => format!("@{secs}"),
    }
}

/// A time since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_millis(since: Duration) -> String {
    let whole = format_seconds(since.as_secs());
    match whole.strip_suffix('Z') {
        Some(head) => format!("{head}.{:03}Z", since.subsec_millis()),
        None => whole,
    }
}

/// Reads a time a person typed or a record holds: `YYYY-MM-DD` (midnight UTC),
/// `YYYY-MM-DDTHH:MM:SSZ`, or the same with `.fff` fractions. Returns seconds since the epoch.
pub fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    let whole = match full.find('.') {
        Some(dot) if full.ends_with('Z') => format!("{}Z", full.get(..dot)?),
        _ => full,
    };
    whole.parse::<DateTime>().ok().map(|dt| dt.unix_duration().as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(format_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_millis(Duration::from_millis(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_seconds("2023-11-14T22:13:20.123Z"), Some(1_700_000_000));
        assert_eq!(parse_seconds("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_seconds("1970-01-02"), Some(86_400));
        assert_eq!(parse_seconds("yesterday"), None);
        assert_eq!(parse_seconds("2023-13-01"), None);
    }
}
