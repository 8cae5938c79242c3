//! Calendar arithmetic shared by every crate that handles dates: ISO-8601
//! dates as Pacemaker writes them ("2005-001", "2019-09-20 15:00:00 -05:00",
//! "2008-05-01T00:00:00Z", "2005-W01-1") → seconds since the epoch (UTC),
//! and proleptic Gregorian day counts both ways. Pure functions.

/// Parses a date with optional time and zone; `None` when malformed.
/// A missing zone means UTC.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(['T', 't', ' ']).unwrap_or(text.len());
    let (date, rest) = text.split_at(split);
    let rest = rest.get(1..).unwrap_or("").trim_start();
    let time_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (time, zone) = rest.split_at(time_len);
    let days = parse_date(date)?;
    let seconds = if time.is_empty() {
        0
    } else {
        parse_time(time)?
    };
    let offset = parse_zone(zone.trim())?;
    Some(days * 86_400 + seconds - offset)
}

/// Days since 1970-01-01 for calendar, ordinal or week dates.
fn parse_date(date: &str) -> Option<i64> {
    let parts: Vec<&str> = date.split('-').collect();
    let year = number(parts.first()?, 4)?;
    match parts.as_slice() {
        [_, month, day] if !month.starts_with(['W', 'w']) => {
            calendar_days(year, number(month, 2)?, number(day, 2)?)
        }
        [_, week, weekday] => week_days(year, number(week.get(1..)?, 2)?, number(weekday, 1)?),
        [_, ordinal] if ordinal.len() == 3 => ordinal_days(year, number(ordinal, 3)?),
        [_, month] => calendar_days(year, number(month, 2)?, 1),
        [_] => calendar_days(year, 1, 1),
        _ => None,
    }
}

/// `HH[:MM[:SS[.fff]]]` → seconds (fractions dropped).
fn parse_time(time: &str) -> Option<i64> {
    let mut fields = time.split(':');
    let hours = number(fields.next()?, 2)?;
    let minutes = fields.next().map_or(Some(0), |m| number(m, 2))?;
    let seconds = match fields.next() {
        Some(s) => number(s.split('.').next()?, 2)?,
        None => 0,
    };
    if fields.next().is_some() || hours > 24 || minutes > 59 || seconds > 60 {
        return None;
    }
    Some(hours * 3600 + minutes * 60 + seconds)
}

/// `Z`, `±HH`, `±HHMM`, `±HH:MM` or nothing → offset east of UTC, seconds.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        2 => (number(&digits, 2)?, 0),
        4 => (number(&digits[..2], 2)?, number(&digits[2..], 2)?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Exactly `len` ASCII digits.
fn number(text: &str, len: usize) -> Option<i64> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn calendar_days(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

fn ordinal_days(year: i64, ordinal: i64) -> Option<i64> {
    let length = if is_leap(year) { 366 } else { 365 };
    if !(1..=length).contains(&ordinal) {
        return None;
    }
    Some(days_from_civil(year, 1, 1) + ordinal - 1)
}

/// ISO week dates: week 1 is the week (Monday first) holding January 4th.
fn week_days(year: i64, week: i64, weekday: i64) -> Option<i64> {
    if !(1..=53).contains(&week) || !(1..=7).contains(&weekday) {
        return None;
    }
    let jan4 = days_from_civil(year, 1, 4);
    let monday_of_week1 = jan4 - weekday_from_monday(jan4);
    Some(monday_of_week1 + (week - 1) * 7 + weekday - 1)
}

/// 0 for Monday … 6 for Sunday (1970-01-01 was a Thursday).
pub fn weekday_from_monday(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// well-known algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (the
/// inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::parse_iso8601 as p;

    #[test]
    fn calendar_dates_with_and_without_time() {
        assert_eq!(p("1970-01-01"), Some(0));
        assert_eq!(p("2020-01-01"), Some(1_577_836_800));
        assert_eq!(p("2019-09-20 15:00:00"), Some(1_568_991_600));
        assert_eq!(p("2008-05-01T00:00:00Z"), Some(1_209_600_000));
    }

    #[test]
    fn zones_shift_to_utc() {
        assert_eq!(p("2019-09-20 15:10:52 +00:00"), Some(1_568_992_252));
        assert_eq!(p("2019-09-23 11:00:00 -05:00"), Some(1_569_254_400));
        assert_eq!(p("2019-09-23T11:00:00-0500"), Some(1_569_254_400));
    }

    #[test]
    fn ordinal_and_week_dates() {
        assert_eq!(p("2005-001"), Some(1_104_537_600));
        assert_eq!(p("2005-032"), Some(1_104_537_600 + 31 * 86_400));
        // 2005-W01-1 is Monday 2005-01-03.
        assert_eq!(p("2005-W01-1"), Some(1_104_710_400));
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            "",
            "abc",
            "2005-13-01",
            "2005-02-30",
            "2005-366",
            "2019-09-20 25:00",
            "2019-09-20 10:00 EST",
            "2019-9-1",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(p("2004-366"), Some(1_104_451_200));
    }
}
