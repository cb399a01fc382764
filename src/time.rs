//! The clock, and UTC calendar formatting (no time-zone database needed).
//!
//! Every "now" in codexport comes from [`now_ms`], so timestamps in revisions, logs, backups
//! and heads agree, and every UTC text comes from [`Utc`], so they read the same everywhere.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Test hook: whole seconds (may be negative) added to every [`now_ms`], read once per
/// process from this variable. The tests of head expiry and re-signing run a real master
/// "days later" with it; like `CODEXPORT_CRASH_BEFORE_STEP`, it is not for users.
pub const CLOCK_OFFSET_ENV: &str = "CODEXPORT_CLOCK_OFFSET_SECS";

fn offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var(CLOCK_OFFSET_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(0, |s| s.saturating_mul(1000))
    })
}

/// Milliseconds since the Unix epoch (UTC); 0 on a clock set before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        .saturating_add(offset_ms())
}

/// Seconds since the Unix epoch (UTC).
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// A UTC calendar time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Utc {
    /// The calendar time of milliseconds since the epoch.
    pub fn from_ms(ms: i64) -> Self {
        Self::from_secs(ms.div_euclid(1000))
    }

    /// The calendar time of seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// `YYYYmmddTHHMMSSZ`: sorts by time and is safe in file names (backup folders).
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339), for log lines.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `YYYY-MM-DD HH:MM:SS`, for people.
impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC of milliseconds since the epoch.
pub fn format_ms(ms: i64) -> String {
    Utc::from_ms(ms).to_string()
}

/// The UTC calendar date `(year, month, day)` of a day count since 1970-01-01, by Howard
/// Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn formats() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(Utc::from_secs(0).compact(), "19700101T000000Z");
        assert_eq!(Utc::from_secs(1_700_000_000).compact(), "20231114T221320Z");
        assert_eq!(Utc::from_secs(951_782_400).compact(), "20000229T000000Z");
        assert_eq!(Utc::from_ms(-1).to_string(), "1969-12-31 23:59:59");
        assert_eq!(
            Utc::from_secs(1_700_000_000).rfc3339(),
            "2023-11-14T22:13:20Z"
        );
    }
}
