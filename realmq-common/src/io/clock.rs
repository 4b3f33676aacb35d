//! Wall-clock readings, the one thing `Instant` cannot give: a timestamp the other host can
//! compare with its own clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (0 if the clock reads before 1970).
pub fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_after_2020() {
        // 2020-01-01 in µs: a clock that reads 0 or garbage fails here.
        assert!(unix_now_us() > 1_577_836_800_000_000);
    }
}
