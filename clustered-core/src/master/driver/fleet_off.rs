//! Stands in for the fleet without the `redis` feature: `CLUSTER_REDIS_URL` is an error
//! naming the feature, so a setting is never ignored.

use tokio::sync::mpsc;

use super::report::Report;
use crate::Error;
use crate::master::control::ClusterControl;
use crate::master::machine::FleetAction;

/// Never made without the feature.
pub(super) enum FleetLink {}

impl FleetLink {
    /// `None`, or an error when `CLUSTER_REDIS_URL` asks for a fleet.
    pub(super) fn start(
        _control: &ClusterControl,
        _reports: mpsc::Sender<Report>,
        _agent: bool,
    ) -> Result<Option<Self>, Error> {
        match std::env::var(crate::env::REDIS_URL) {
            Ok(value) if !value.is_empty() => Err(Error::Env {
                var: crate::env::REDIS_URL,
                value,
                reason: "this program was built without the fleet: enable the `redis` feature of clustered".into(),
            }),
            _ => Ok(None),
        }
    }

    pub(super) fn execute(&self, _action: FleetAction) {
        match *self {}
    }

    pub(super) fn serving(&self, _addresses: &[clustered_ipc::ListenAddr]) {
        match *self {}
    }

    pub(super) async fn withdraw(&self) {
        match *self {}
    }
}
