//! The TLS metrics a worker records, with the `metrics` crate (the master sums them over the
//! cluster): `cluster_tls_handshakes_total` (finished handshakes), `…_resumed_handshakes_total`
//! (of which resumed a session, from a ticket any worker sealed) and
//! `cluster_tls_handshake_failures_total` by `reason`: `timeout` (not finished within the
//! handshake timeout), `closed` (the client went away), `protocol` (it spoke TLS wrong or
//! offered nothing this server takes), `io` (the socket failed).

use std::io;

const HANDSHAKES: &str = "cluster_tls_handshakes_total";
const RESUMED: &str = "cluster_tls_resumed_handshakes_total";
const FAILURES: &str = "cluster_tls_handshake_failures_total";

/// Why a handshake did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Timeout,
    Closed,
    Protocol,
    Io,
}

impl Failure {
    /// The failure an accept's error stands for.
    pub(crate) fn of(error: &io::Error) -> Self {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return Failure::Protocol;
        }
        match error.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Failure::Closed,
            io::ErrorKind::InvalidData => Failure::Protocol,
            _ => Failure::Io,
        }
    }

    /// Its place among the per-reason handles.
    fn index(self) -> usize {
        match self {
            Failure::Timeout => 0,
            Failure::Closed => 1,
            Failure::Protocol => 2,
            Failure::Io => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Closed => "closed",
            Failure::Protocol => "protocol",
            Failure::Io => "io",
        }
    }
}

/// A finished handshake, resumed or full.
pub(crate) fn handshake(resumed: bool) {
    // The handles are made once, as http_metrics does: no registry lookup per handshake.
    static HANDLES: std::sync::OnceLock<(metrics::Counter, metrics::Counter)> =
        std::sync::OnceLock::new();
    let (handshakes, resumed_handshakes) = HANDLES.get_or_init(|| {
        metrics::describe_counter!(HANDSHAKES, "TLS handshakes finished.");
        metrics::describe_counter!(
            RESUMED,
            "TLS handshakes that resumed a session (from a ticket any worker sealed)."
        );
        (metrics::counter!(HANDSHAKES), metrics::counter!(RESUMED))
    });
    handshakes.increment(1);
    if resumed {
        resumed_handshakes.increment(1);
    }
}

/// A handshake that did not finish.
pub(crate) fn failed(failure: Failure) {
    // One handle per reason, made on its first failure: a flood of failing handshakes (a scan,
    // clients that hang up at once) costs no registry lookup, label hashing or describe each.
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    static HANDLES: [std::sync::OnceLock<metrics::Counter>; 4] =
        [const { std::sync::OnceLock::new() }; 4];
    HANDLES[failure.index()]
        .get_or_init(|| {
            DESCRIBED.call_once(|| {
                metrics::describe_counter!(
                    FAILURES,
                    "TLS handshakes that did not finish, by reason."
                );
            });
            metrics::counter!(FAILURES, "reason" => failure.label())
        })
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::Failure;
    use std::io;

    #[test]
    fn each_error_has_its_reason() {
        let protocol = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("bad".into()),
        );
        assert_eq!(Failure::of(&protocol), Failure::Protocol);
        assert_eq!(
            Failure::of(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            Failure::Closed
        );
        assert_eq!(
            Failure::of(&io::Error::from(io::ErrorKind::ConnectionReset)),
            Failure::Closed
        );
        assert_eq!(Failure::of(&io::Error::other("disk")), Failure::Io);
    }

    #[test]
    fn each_reason_has_its_own_handle() {
        let all = [
            Failure::Timeout,
            Failure::Closed,
            Failure::Protocol,
            Failure::Io,
        ];
        let places: std::collections::BTreeSet<_> = all.map(Failure::index).into();
        assert_eq!(places, (0..4).collect());
        let labels: std::collections::BTreeSet<_> = all.map(Failure::label).into();
        assert_eq!(labels.len(), 4);
    }
}
