//! `Score`: Pacemaker's node-preference number, saturating at ±INFINITY.
//!
//! Scores are integers clamped to [-1 000 000, +1 000 000]. Addition saturates
//! and -INFINITY dominates +INFINITY, the way Pacemaker adds scores.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The magnitude Pacemaker calls INFINITY.
pub const INFINITY: i64 = 1_000_000;

/// A placement score. Always within [-INFINITY, INFINITY].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Score(i64);

impl Score {
    pub const ZERO: Score = Score(0);
    pub const INFINITY: Score = Score(INFINITY);
    pub const NEG_INFINITY: Score = Score(-INFINITY);

    /// Builds a score, clamping to ±INFINITY.
    pub fn new(value: i64) -> Score {
        Score(value.clamp(-INFINITY, INFINITY))
    }

    pub fn value(self) -> i64 {
        self.0
    }

    pub fn is_pos_infinity(self) -> bool {
        self.0 >= INFINITY
    }

    pub fn is_neg_infinity(self) -> bool {
        self.0 <= -INFINITY
    }

    /// Pacemaker's addition: -INF dominates, then +INF, else a clamped sum.
    pub fn plus(self, other: Score) -> Score {
        if self.is_neg_infinity() || other.is_neg_infinity() {
            Score::NEG_INFINITY
        } else if self.is_pos_infinity() || other.is_pos_infinity() {
            Score::INFINITY
        } else {
            Score::new(self.0 + other.0)
        }
    }

    /// Parses a score string the way Pacemaker does: exact `INFINITY`,
    /// `+INFINITY`, `-INFINITY`; otherwise a leading decimal integer with any
    /// trailing junk ignored, clamped. Health colours are resolved by the
    /// caller (they depend on the node-health strategy). `None` if there are
    /// no digits.
    pub fn parse(text: &str) -> Option<Score> {
        let t = text.trim();
        match t {
            "INFINITY" | "+INFINITY" => return Some(Score::INFINITY),
            "-INFINITY" => return Some(Score::NEG_INFINITY),
            _ => {}
        }
        let bytes = t.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if i < bytes.len() && (bytes[i] == b'-' || bytes[i] == b'+') {
            negative = bytes[i] == b'-';
            i += 1;
        }
        let start = i;
        let mut value: i64 = 0;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            value = value
                .saturating_mul(10)
                .saturating_add((bytes[i] - b'0') as i64);
            i += 1;
        }
        if i == start {
            return None;
        }
        Some(Score::new(if negative { -value } else { value }))
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_pos_infinity() {
            f.write_str("INFINITY")
        } else if self.is_neg_infinity() {
            f.write_str("-INFINITY")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_infinity_dominates_pos_infinity() {
        assert_eq!(
            Score::INFINITY.plus(Score::NEG_INFINITY),
            Score::NEG_INFINITY
        );
        assert_eq!(
            Score::NEG_INFINITY.plus(Score::INFINITY),
            Score::NEG_INFINITY
        );
    }

    #[test]
    fn addition_saturates() {
        assert_eq!(
            Score::new(900_000).plus(Score::new(200_000)),
            Score::INFINITY
        );
        assert_eq!(
            Score::new(-900_000).plus(Score::new(-200_000)),
            Score::NEG_INFINITY
        );
        assert_eq!(Score::new(5).plus(Score::new(-7)), Score::new(-2));
    }

    #[test]
    fn parse_follows_pacemaker() {
        assert_eq!(Score::parse("INFINITY"), Some(Score::INFINITY));
        assert_eq!(Score::parse("+INFINITY"), Some(Score::INFINITY));
        assert_eq!(Score::parse("-INFINITY"), Some(Score::NEG_INFINITY));
        assert_eq!(Score::parse("100abc"), Some(Score::new(100)));
        assert_eq!(Score::parse("-5"), Some(Score::new(-5)));
        assert_eq!(Score::parse("99999999999999999999"), Some(Score::INFINITY));
        assert_eq!(Score::parse("infinity"), None);
        assert_eq!(Score::parse("abc"), None);
        assert_eq!(Score::parse(""), None);
    }
}
