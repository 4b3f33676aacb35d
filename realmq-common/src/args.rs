//! Parsers for the command-line values both binaries take, shaped for clap's
//! `value_parser` (an error is a one-line message for the user).

use std::time::Duration;

/// A positive number of seconds, fractions allowed (`0.5`), at most a day.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{s} is out of range: give 0 < SECS <= 86400"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A percentage from 0 to 100.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let pct: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(format!("{s} is out of range: give 0 <= PCT <= 100"));
    }
    Ok(pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("90000").is_err());
        assert!(parse_seconds("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn percent() {
        assert_eq!(parse_percent("10"), Ok(10.0));
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert!(parse_percent("100.5").is_err());
        assert!(parse_percent("NaN").is_err());
        assert!(parse_percent("ten").is_err());
    }
}
