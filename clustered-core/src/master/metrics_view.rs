//! The cluster's metrics as one Prometheus text: every process's (from the [`MetricsBook`]
//! regions) and what the master knows itself — workers, restarts, handoffs, its backlog, and
//! per worker its load, memory and CPU.
//!
//! [`MetricsBook`]: crate::shared_metrics::MetricsBook

use std::sync::Arc;

use super::control::ClusterControl;
use crate::proc_stats::{cpu_seconds, rss_bytes};
use crate::role::AGENT_ID;
use crate::shared_metrics::{Families, GaugeAggregation, Region, RegionRecorder, SeriesKey, Value};

/// The metrics source id of the master's own region (workers' are their keys, counted from 0).
const MASTER_METRICS: u64 = u64::MAX;

/// Installs the cluster's recorder in the master too, so what master-side code records (in
/// [`crate::Cluster::on_master`]) is in the cluster's metrics, labelled `master` per worker.
pub(crate) fn record_master_metrics(control: &ClusterControl) {
    match Region::create() {
        Ok((region, _fd)) => {
            let region = Arc::new(region);
            if RegionRecorder::new(Arc::clone(&region)).install() {
                control
                    .metrics()
                    .add(MASTER_METRICS, "master".into(), region);
            } else {
                tracing::debug!("a metrics recorder is installed in the master already");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot make the master's metrics region"),
    }
}

/// The whole cluster's metrics, in Prometheus text exposition format (0.0.4).
pub(crate) fn exposition(control: &ClusterControl) -> String {
    let mut families = Families::default();
    control.metrics().fill(&mut families);
    master_metrics(control, &mut families);
    families.render()
}

fn master_metrics(control: &ClusterControl, families: &mut Families) {
    let registry = control.registry();
    let workers = control.workers();
    let mut add = |name: &str, help: &str, worker: Option<usize>, value: Value| {
        let labels = worker.map(|slot| ("worker".to_owned(), slot.to_string()));
        let key = SeriesKey {
            name: name.to_owned(),
            labels: labels.into_iter().collect(),
        };
        families.add(key, value, GaugeAggregation::Sum);
        families.describe(name, help);
    };
    add(
        "cluster_workers",
        "Worker processes alive (two in a slot while a reload replaces it; not the agent).",
        None,
        Value::Gauge(workers.iter().filter(|w| w.id() != AGENT_ID).count() as f64),
    );
    add(
        "cluster_worker_restarts_total",
        "Workers restarted after dying on their own.",
        None,
        Value::Counter(registry.total_restarts()),
    );
    add(
        "cluster_handoffs_total",
        "Connections the master accepted and handed to a worker.",
        None,
        Value::Counter(registry.handoffs()),
    );
    add(
        "cluster_accept_backlog",
        "Accepted connections waiting in the master for a worker with room.",
        None,
        Value::Gauge(registry.backlog() as f64),
    );
    if let Some(fleet) = registry.fleet() {
        add(
            "cluster_redis_up",
            "1 while the fleet's Redis is reachable and subscribed to, else 0.",
            None,
            Value::Gauge(if fleet.up { 1.0 } else { 0.0 }),
        );
        add(
            "cluster_redis_reconnects_total",
            "Times the connection to the fleet's Redis came back after it was lost.",
            None,
            Value::Counter(fleet.reconnects),
        );
    }
    for worker in &workers {
        let (slot, load) = (Some(worker.id()), worker.load());
        add(
            "cluster_worker_connections",
            "Open connections of each worker (slot), from its last heartbeat.",
            slot,
            Value::Gauge(load.connections as f64),
        );
        add(
            "cluster_worker_inflight_requests",
            "Requests each worker (slot) is handling, from its last heartbeat.",
            slot,
            Value::Gauge(load.in_flight as f64),
        );
        add(
            "cluster_worker_rss_bytes",
            "Resident memory of each worker (slot).",
            slot,
            Value::Gauge(rss_bytes(worker.pid()) as f64),
        );
        add(
            "cluster_worker_cpu_seconds_total",
            "User and system CPU time of each worker (slot) process.",
            slot,
            Value::FloatCounter(cpu_seconds(worker.pid())),
        );
    }
}
