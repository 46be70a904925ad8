//! [`Timestamp`]: a moment of the farm's history, as the proposing leader's clock saw it.
//!
//! Times are never read from a clock here: the leader stamps every proposal before it
//! proposes (`Proposal::at_ms`), and applying a proposal takes its time from the state's
//! clock, the largest stamp applied so far (so a job never finishes before it started,
//! even when two leaders' clocks disagree). Every replica therefore stores the same time.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z, written as RFC 3339 in UTC with
/// milliseconds (`2026-12-06T19:31:07.123Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

const MS_PER_DAY: u64 = 86_400_000;

impl Timestamp {
    pub const fn from_unix_ms(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn unix_ms(self) -> u64 {
        self.0
    }

    /// Milliseconds from `self` to `later` (0 if `later` is earlier).
    pub fn millis_until(self, later: Timestamp) -> u64 {
        later.0.saturating_sub(self.0)
    }

    /// Parses what [`fmt::Display`] writes: `YYYY-MM-DDTHH:MM:SS[.fff]Z` (a lower-case `t`
    /// or `z` too), from 1970 on.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        let raw = raw.strip_suffix(['Z', 'z'])?;
        let (date, time) = raw.split_once(['T', 't'])?;
        let mut date_parts = date.splitn(3, '-');
        let year: u64 = digits(date_parts.next()?, 4)?;
        let month: u64 = digits(date_parts.next()?, 2)?;
        let day: u64 = digits(date_parts.next()?, 2)?;
        let (clock, fraction) = match time.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (time, None),
        };
        let mut clock_parts = clock.splitn(3, ':');
        let hour: u64 = digits(clock_parts.next()?, 2)?;
        let minute: u64 = digits(clock_parts.next()?, 2)?;
        let second: u64 = digits(clock_parts.next()?, 2)?;
        let millis = match fraction {
            None => 0,
            Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
                // Milliseconds: the first three digits, padded.
                let padded = format!("{f:0<3}");
                padded[..3].parse().ok()?
            }
            Some(_) => return None,
        };
        let valid = year >= 1970
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let ms = days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        Some(Self(ms))
    }
}

/// Exactly `len` ASCII digits.
fn digits(raw: &str, len: usize) -> Option<u64> {
    (raw.len() == len && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse().ok())
        .flatten()
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date from 1970 on (H. Hinnant's `days_from_civil`, for
/// non-negative days only).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.0 / MS_PER_DAY);
        let in_day = self.0 % MS_PER_DAY;
        let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
        let (second, millis) = (in_day / 1000 % 60, in_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{raw}' is not an RFC 3339 UTC time like 2026-12-06T19:31:07.123Z"
            ))
        })
    }
}

/// A duration as a person reads it on a job card: `45 s`, `12 min`, `3 h 05 min`,
/// `2 d 04 h`.
pub fn human_duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=86_399 => format!("{} h {:02} min", seconds / 3600, seconds / 60 % 60),
        _ => format!("{} d {:02} h", seconds / 86_400, seconds / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_moments_are_written_as_rfc3339_utc() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_796_585_467_123, "2026-12-06T19:31:07.123Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ] {
            let time = Timestamp::from_unix_ms(ms);
            assert_eq!(time.to_string(), text);
            assert_eq!(Timestamp::parse_rfc3339(text), Some(time), "{text}");
        }
    }

    #[test]
    fn other_writings_of_a_utc_time_parse_and_nonsense_does_not() {
        let at = |s: &str| Timestamp::parse_rfc3339(s).map(Timestamp::unix_ms);
        assert_eq!(at("2026-12-06T19:31:07Z"), Some(1_796_585_467_000));
        assert_eq!(at("2026-12-06t19:31:07.1z"), Some(1_796_585_467_100));
        assert_eq!(
            at("2026-12-06T19:31:07.123456789Z"),
            Some(1_796_585_467_123)
        );
        for bad in [
            "",
            "2026-12-06",
            "2026-12-06T19:31:07",
            "2026-12-06T19:31:07+01:00",
            "2026-13-06T19:31:07Z",
            "2026-02-29T00:00:00Z",
            "2026-12-32T00:00:00Z",
            "2026-12-06T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-12-06T19:31:07.Z",
            "+2026-12-06T19:31:07Z",
            "２026-12-06T19:31:07Z",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_read_like_a_person_says_them() {
        assert_eq!(human_duration(999), "0 s");
        assert_eq!(human_duration(59_000), "59 s");
        assert_eq!(human_duration(60_000), "1 min");
        assert_eq!(human_duration(3_599_000), "59 min");
        assert_eq!(human_duration(3_900_000), "1 h 05 min");
        assert_eq!(human_duration(90_000_000), "1 d 01 h");
    }

    proptest! {
        #[test]
        fn every_moment_to_year_9999_round_trips(ms in 0u64..253_402_300_800_000) {
            let time = Timestamp::from_unix_ms(ms);
            prop_assert_eq!(Timestamp::parse_rfc3339(&time.to_string()), Some(time));
            let json = serde_json::to_string(&time).expect("serialise");
            prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parse"), time);
        }
    }
}
