//! From the threads' outcomes to what the user is told: the summary (with the run's error,
//! if any) and whether the run succeeded.

use crate::{ClientSummary, RunInfo, RunOutcome, ThreadResult};

/// The summary of a finished run and its error, if the run failed: the first thread error,
/// an unreachable server, a protocol violation, or undeliverable messages.
pub fn judge(run: RunInfo, outcome: RunOutcome, interrupted: bool) -> ClientSummary {
    let mut ok = Vec::new();
    let mut first_error = None;
    for (index, result) in outcome.results {
        match result {
            Ok(r) => ok.push(r),
            Err(e) => {
                log::debug!("thread {index}: {e:#}");
                first_error.get_or_insert(format!("{e:#}"));
                // What it sent still counts; what arrived is unknown (no count from the
                // server), so the run's delivery is too.
                let (sent, acked) = (outcome.published.iter())
                    .find(|(i, ..)| *i == index)
                    .map_or((0, 0), |&(_, sent, acked)| (sent, acked));
                ok.push(ThreadResult {
                    sent,
                    acked,
                    server_received: None,
                    ..ThreadResult::default()
                });
            }
        }
    }
    let mut summary = ClientSummary::new(run, &ok);
    summary.intervals = outcome.intervals;
    summary.interrupted = interrupted;
    let missing_bye = ok.iter().filter(|r| r.server_received.is_none()).count();
    if missing_bye > 0 && !summary.unreachable && first_error.is_none() {
        log::warn!("{missing_bye} session(s) ended without the server's final count (BYE)");
    }
    let from_acks = ok.iter().filter(|r| r.counted_from_acks).count();
    if from_acks > 0 {
        log::info!(
            "{from_acks} session(s) ended without the server's BYE; every message of theirs was \
             acknowledged, so their delivery is counted from the ACKs"
        );
    }
    summary.error = first_error.or_else(|| {
        if summary.protocol_violation {
            Some("the server acknowledged messages never sent: session closed".into())
        } else if summary.unreachable {
            Some("the server became unreachable during the run".into())
        } else {
            let undeliverable = summary.undeliverable.unwrap_or(0);
            let unconfirmed = (summary.sent)
                .saturating_sub(summary.acked.unwrap_or(summary.sent) + undeliverable);
            if undeliverable > 0 {
                Some(format!(
                    "{undeliverable} of {} messages were undeliverable",
                    summary.sent
                ))
            } else if interrupted && summary.qos && unconfirmed > 0 {
                // Only a session ended while messages were in flight leaves any: the wait
                // after Ctrl-C ran out (`udp.rs`, DRAIN_AFTER_INTERRUPT).
                Some(format!(
                    "interrupted: {unconfirmed} of {} messages were never acknowledged",
                    summary.sent
                ))
            } else {
                None
            }
        }
    });
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunInfo {
        RunInfo {
            protocol: "udp",
            qos: true,
            threads: 2,
            size: 64,
        }
    }

    #[test]
    fn a_thread_error_is_the_run_error_and_the_rest_still_counts() {
        let ok = ThreadResult {
            sent: 5,
            acked: 5,
            server_received: Some(5),
            ..ThreadResult::default()
        };
        let outcome = RunOutcome {
            results: vec![(0, Ok(ok)), (1, Err(anyhow::anyhow!("no route to host")))],
            intervals: Vec::new(),
            published: vec![(0, 5, 5), (1, 3, 1)],
        };
        let s = judge(run(), outcome, true);
        assert_eq!(s.error.as_deref(), Some("no route to host"));
        // The failed thread's messages count as sent, with no count from the server: what
        // arrived is unknown, never a "delivered 0" or a loss made up.
        assert_eq!((s.sent, s.acked, s.interrupted), (8, Some(6), true));
        assert_eq!((s.delivered, s.lost, s.delivered_per_s), (None, None, None));
        let text = realmq_common::io::TextReport::to_text(&s);
        assert!(
            text.contains("delivered: unknown (the run failed"),
            "{text}"
        );
    }

    #[test]
    fn messages_left_unacknowledged_after_an_interrupt_fail_the_run() {
        let r = |acked| ThreadResult {
            sent: 10,
            acked,
            server_received: None,
            ..ThreadResult::default()
        };
        let judged = |acked, interrupted| {
            let outcome = RunOutcome {
                results: vec![(0, Ok(r(acked)))],
                intervals: Vec::new(),
                published: Vec::new(),
            };
            judge(run(), outcome, interrupted).error
        };
        assert_eq!(
            judged(7, true).as_deref(),
            Some("interrupted: 3 of 10 messages were never acknowledged")
        );
        // Drained before the session ended: an interrupted run that lost nothing.
        assert_eq!(judged(10, true), None);
    }

    #[test]
    fn undeliverable_messages_fail_the_run() {
        let r = ThreadResult {
            sent: 5,
            acked: 4,
            undeliverable: 1,
            server_received: Some(4),
            ..ThreadResult::default()
        };
        let outcome = RunOutcome {
            results: vec![(0, Ok(r))],
            intervals: Vec::new(),
            published: Vec::new(),
        };
        let s = judge(run(), outcome, false);
        assert_eq!(
            s.error.as_deref(),
            Some("1 of 5 messages were undeliverable")
        );
    }
}
