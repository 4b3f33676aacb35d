//! What the sender reports: why it refused a message or part of an ACK, and the events the
//! session layer acts on.

#[cfg(doc)]
use super::Sender;
#[cfg(doc)]
use crate::config::SenderConfig;

/// Why [`Sender::send`] refused to take a message into its window. Nothing was stored and
/// no ID was used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The window is full (in messages or bytes). Retry after ACKs have arrived.
    #[error("send window full")]
    Backpressure,
    /// The payload cannot fit in one datagram.
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// [`SenderConfig::max_payload`].
        max: usize,
    },
    /// The session used up its 2^62 message IDs.
    #[error("message IDs exhausted")]
    IdsExhausted,
}

/// ACKs in a row naming IDs beyond the peer's plausibility window before the sender
/// reports [`SenderEvent::ProtocolViolation`].
pub const MAX_VIOLATING_ACKS: u32 = 16;

/// What was wrong with an ACK frame given to [`Sender::handle_ack`]. Only the part naming
/// IDs never sent was ignored: the rest was processed as usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The ACK names an ID this sender never sent (a forged or misdelivered message reached
    /// the peer, or the peer is broken).
    #[error("ACK of message {largest}, never sent (largest sent: {largest_sent:?})")]
    UnsentId {
        /// The frame's largest acknowledged ID.
        largest: u64,
        /// The largest ID this sender has sent, if any.
        largest_sent: Option<u64>,
    },
}

/// Something the application should know, from [`Sender::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenderEvent {
    /// The message was lost more than [`SenderConfig::max_retries`] resends allow and was
    /// removed. It may still have arrived (its last copy, or its ACK, could be late), but the
    /// sender no longer knows.
    Undeliverable {
        /// The message's ID.
        id: u64,
    },
    /// The peer's ACKs stopped: it has been suspected (φ ≥ threshold) for the whole grace
    /// period, and left enough datagrams unanswered meanwhile that heavy loss cannot explain
    /// the silence (`sender/reachability.rs`). Reported once (again only after it was heard
    /// from).
    PeerUnreachable,
    /// [`MAX_VIOLATING_ACKS`] ACKs in a row named IDs beyond anything sent plus the peer's
    /// plausibility window, which an honest peer never does. Reported once; the session
    /// layer closes the session.
    ProtocolViolation,
}
