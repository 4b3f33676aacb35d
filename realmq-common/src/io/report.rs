//! Printing a run's summary: one JSON object on stdout with `--json`, readable lines without.

use std::io::{self, Write};

use serde::Serialize;

/// A summary that also has a human-readable form.
pub trait TextReport {
    /// Several lines of text, each ending in `\n`.
    fn to_text(&self) -> String;
}

/// Writes `summary` to `out` as one JSON object and a newline (`json`), or as text.
pub fn print_report<T: Serialize + TextReport>(
    out: &mut impl Write,
    summary: &T,
    json: bool,
) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, summary)?;
        writeln!(out)
    } else {
        out.write_all(summary.to_text().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Tiny {
        sent: u64,
    }

    impl TextReport for Tiny {
        fn to_text(&self) -> String {
            format!("sent {}\n", self.sent)
        }
    }

    #[test]
    fn json_is_one_line_and_text_is_the_texts() {
        let mut out = Vec::new();
        print_report(&mut out, &Tiny { sent: 3 }, true).unwrap();
        assert_eq!(out, b"{\"sent\":3}\n");
        out.clear();
        print_report(&mut out, &Tiny { sent: 3 }, false).unwrap();
        assert_eq!(out, b"sent 3\n");
    }
}
