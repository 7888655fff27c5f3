//! The metrics endpoint when this build has none (feature `metrics-endpoint` off): asking for
//! it is an error that says how to get it. The metrics are still recorded, and `clusterctl
//! metrics` reads them.

use crate::error::Error;
use crate::master::control::ClusterControl;

/// The endpoint's stand-in: never opened (there is no value of it).
#[derive(Debug)]
pub(crate) enum MetricsEndpoint {}

impl MetricsEndpoint {
    /// Fails: this build serves no `/metrics`.
    pub(crate) async fn open(
        _address: &str,
        _control: ClusterControl,
        _inherited: Option<std::os::fd::OwnedFd>,
    ) -> Result<Self, Error> {
        Err(Error::FeatureOff {
            setting: "the metrics endpoint (CLUSTER_METRICS_ADDR, Cluster::metrics_addr)",
            feature: "metrics-endpoint",
        })
    }

    /// Never called: no endpoint is ever opened.
    pub(crate) fn handover_fd(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::MetricsEndpoint;
    use crate::master::control::ClusterControl;

    #[tokio::test]
    async fn asking_for_the_endpoint_names_the_feature() {
        let error = MetricsEndpoint::open("127.0.0.1:0", ClusterControl::new(), None)
            .await
            .expect_err("this build serves no /metrics");
        assert!(
            error.to_string().contains("the `metrics-endpoint` feature"),
            "{error}"
        );
    }
}
