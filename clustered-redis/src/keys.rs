//! The names of everything the fleet keeps in Redis, under its namespace.

/// The keys and channels of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    namespace: String,
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    /// The broadcast channel.
    pub(crate) fn broadcast(&self) -> String {
        format!("{}:broadcast", self.namespace)
    }

    /// The channel counter changes are published on.
    pub(crate) fn counter_updates(&self) -> String {
        format!("{}:counters", self.namespace)
    }

    /// A member's inbox channel.
    pub(crate) fn inbox(&self, id: &str) -> String {
        format!("{}:inbox:{id}", self.namespace)
    }

    /// A member's probe channel (it publishes there to check its own subscriptions).
    pub(crate) fn probe(&self, id: &str) -> String {
        format!("{}:probe:{id}", self.namespace)
    }

    /// A counter's key.
    pub(crate) fn counter(&self, name: &str) -> String {
        format!("{}:counter:{name}", self.namespace)
    }

    /// The lease's key (its value: holder and token).
    pub(crate) fn lease(&self) -> String {
        format!("{}:lease", self.namespace)
    }

    /// The lease's fencing counter.
    pub(crate) fn fence(&self) -> String {
        format!("{}:fence", self.namespace)
    }

    /// A member's heartbeat key.
    pub(crate) fn master(&self, id: &str) -> String {
        format!("{}:master:{id}", self.namespace)
    }

    /// The pattern every heartbeat key matches.
    pub(crate) fn masters_pattern(&self) -> String {
        format!("{}:master:*", self.namespace)
    }
}
