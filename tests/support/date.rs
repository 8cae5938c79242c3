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

/// Parses the ISO 8601 forms crm_simulate's `-t` takes in the corpus
/// (`YYYY-MM-DD` or ordinal `YYYY-DDD`, optionally with a time and `Z`),
/// with the same calendar code the CIB parser uses.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    tandem_model::calendar::parse_iso8601(text)
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
