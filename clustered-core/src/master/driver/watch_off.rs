//! Watch mode when this build has none (feature `watch` off): asking for it is an error that
//! says how to get it.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::master::control::ClusterControl;

/// Watch mode's stand-in: never started.
#[derive(Debug)]
pub(crate) struct Watch;

impl Watch {
    /// Fails: this build cannot watch files.
    pub(crate) fn start(
        _exe: &Path,
        _extra: &[PathBuf],
        _control: ClusterControl,
    ) -> Result<Watch, Error> {
        Err(Error::FeatureOff {
            setting: "watch mode (CLUSTER_WATCH, Cluster::watch)",
            feature: "watch",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Watch;
    use crate::master::control::ClusterControl;

    #[test]
    fn asking_for_watch_mode_names_the_feature() {
        let error = Watch::start("/bin/true".as_ref(), &[], ClusterControl::new())
            .expect_err("this build has no watch mode");
        assert!(error.to_string().contains("the `watch` feature"), "{error}");
    }
}
