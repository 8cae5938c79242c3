//! The effective "now" of a corpus case, in epoch seconds.
//!
//! Precedence follows the corpus README: the `-t DATE` argument upstream's
//! harness passes, else the CIB's `execution-date`, else a fixed default so
//! that runs are reproducible. Dates without an offset are read as UTC (CI
//! runs in UTC, where crm_simulate reads them the same way).

/// "Now" for cases that name no date: 2026-07-01T00:00:00Z, the date of the
/// Pacemaker commit the corpus was taken from (later than every timestamp
/// recorded in its status sections).
pub const DEFAULT_NOW: i64 = 1_782_864_000;

/// Picks the case's "now": `-t DATE` if given, else `execution-date`, else
/// [`DEFAULT_NOW`]. A `-t` value that cannot be read is an error.
pub fn case_now(date_arg: Option<&str>, execution_date: Option<i64>) -> Result<i64, String> {
    match date_arg {
        Some(text) => parse_iso8601(text).ok_or(format!("cannot read -t date {text:?}")),
        None => Ok(execution_date.unwrap_or(DEFAULT_NOW)),
    }
}

/// Parses the ISO 8601 forms crm_simulate's `-t` takes in the corpus:
/// `YYYY-MM-DD` or ordinal `YYYY-DDD`, optionally followed by `T` or a space
/// and `HH:MM[:SS]`, optionally ending in `Z`.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.find(['T', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let days = parse_date(date)?;
    let seconds = match time {
        Some(time) => parse_time(time.trim_end_matches('Z'))?,
        None => 0,
    };
    Some(days * 86_400 + seconds)
}

/// Days since 1970-01-01 of `YYYY-MM-DD` or `YYYY-DDD`.
fn parse_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split('-').collect();
    let year: i64 = parts.first()?.parse().ok()?;
    match parts[1..] {
        [ordinal] if ordinal.len() == 3 => {
            let ordinal: i64 = ordinal.parse().ok()?;
            let year_length = if is_leap(year) { 366 } else { 365 };
            (1..=year_length)
                .contains(&ordinal)
                .then(|| days_from_civil(year, 1, 1) + ordinal - 1)
        }
        [month, day] => {
            let (month, day): (i64, i64) = (month.parse().ok()?, day.parse().ok()?);
            let valid =
                (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
            valid.then(|| days_from_civil(year, month, day))
        }
        _ => None,
    }
}

/// Seconds since midnight of `HH:MM[:SS]`.
fn parse_time(text: &str) -> Option<i64> {
    let parts: Vec<i64> = text
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (hour, minute, second) = match parts[..] {
        [h, m] => (h, m, 0),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    let valid = (0..24).contains(&hour) && (0..60).contains(&minute) && (0..61).contains(&second);
    valid.then_some(hour * 3600 + minute * 60 + second)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date
/// (the well-known era-based civil calendar conversion).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_date_arguments_parse_as_utc() {
        assert_eq!(parse_iso8601("2005-020"), Some(1_106_179_200));
        assert_eq!(
            parse_iso8601("2005-020T12:30"),
            Some(1_106_179_200 + 12 * 3600 + 1800)
        );
        assert_eq!(parse_iso8601("2014-05-07 00:28:00"), Some(1_399_422_480));
        assert_eq!(parse_iso8601("2026-07-01"), Some(DEFAULT_NOW));
        assert_eq!(parse_iso8601("1970-01-01T00:00:01Z"), Some(1));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for bad in [
            "2005-13-01",
            "2005-02-29",
            "2005-366",
            "2005-020T25:00",
            "tomorrow",
            "",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        assert!(parse_iso8601("2004-02-29").is_some());
        assert!(parse_iso8601("2004-366").is_some());
    }

    #[test]
    fn now_prefers_the_date_argument_then_the_execution_date() {
        assert_eq!(case_now(Some("1970-01-02"), Some(5)), Ok(86_400));
        assert_eq!(case_now(None, Some(5)), Ok(5));
        assert_eq!(case_now(None, None), Ok(DEFAULT_NOW));
        assert!(case_now(Some("soon"), Some(5)).is_err());
    }
}
