//! Test support for the cluster (not published): start real cluster processes
//! ([`process`]), talk HTTP to them ([`http`]), load them ([`load`]), run a real Redis for the fleet ([`redis`]). The `fixture` example is a
//! small clustered app with switchable faults for the lifecycle tests.

pub mod http;
pub mod load;
pub mod metrics;
pub mod notify;
pub mod process;
pub mod redis;
pub mod tls;

pub use http::{H2, Reply, get, get_from, get_h2, get_unix};
pub use load::{Connections, Load, LoadReport};
pub use metrics::{scrape, value, wait_for_metric, wait_for_samples, wait_in_flight};
pub use notify::{Note, NotifySocket, exit_note};
pub use process::{
    ClusterProcess, Program, SCHED_BATCH, SCHED_OTHER, bytes_written, children_of, eventually,
    is_alive, runs_as, scheduling_policies, signal_pid, status_kib, wait_all_gone, wait_until,
    zombie_children_of,
};
pub use redis::RedisServer;
pub use tls::{TestCertificate, TlsConnection, TlsReply, get_tls, get_tls_over};
