//! [`FleetConfig`]: where the fleet's Redis is and which namespace this program uses.

use crate::FleetError;

/// The variable that turns the fleet on: `redis://host:port/db` or `redis+unix:///path`.
pub const ENV_URL: &str = "CLUSTER_REDIS_URL";
/// The variable naming the namespace (default: the program's name).
pub const ENV_NAMESPACE: &str = "CLUSTER_REDIS_NAMESPACE";

/// The longest namespace, in bytes.
const MAX_NAMESPACE: usize = 128;

/// Where the fleet's Redis is, and the namespace that keeps this application's keys and
/// channels apart from another's on the same Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// The Redis URL (`redis://…` or `redis+unix://…`).
    pub url: String,
    /// The prefix of every key and channel.
    pub namespace: String,
}

impl FleetConfig {
    /// A fleet on the Redis at `url`, in the program's namespace (its executable's name).
    pub fn new(url: impl Into<String>) -> Result<Self, FleetError> {
        let url = url.into();
        check_url(&url, "the Redis URL")?;
        Ok(Self {
            url,
            namespace: program_name(),
        })
    }

    /// The same fleet in `namespace`.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Result<Self, FleetError> {
        let namespace = namespace.into();
        check_namespace(&namespace, "the namespace")?;
        self.namespace = namespace;
        Ok(self)
    }

    /// From the environment: `None` when [`ENV_URL`] is not set.
    pub fn from_env() -> Result<Option<Self>, FleetError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From variables read by `lookup` (the environment, or a test's): `None` when [`ENV_URL`]
    /// is not set or empty.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, FleetError> {
        let Some(url) = lookup(ENV_URL).filter(|url| !url.is_empty()) else {
            return Ok(None);
        };
        check_url(&url, ENV_URL)?;
        let namespace = match lookup(ENV_NAMESPACE).filter(|ns| !ns.is_empty()) {
            Some(namespace) => {
                check_namespace(&namespace, ENV_NAMESPACE)?;
                namespace
            }
            None => program_name(),
        };
        Ok(Some(Self { url, namespace }))
    }
}

fn check_url(url: &str, source: &str) -> Result<(), FleetError> {
    let known = ["redis://", "redis+unix://", "unix://"];
    if known.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(());
    }
    Err(FleetError::Config(format!(
        "{source}={url:?} is not a Redis URL: give redis://host:port or redis+unix:///path/to/redis.sock"
    )))
}

fn check_namespace(namespace: &str, source: &str) -> Result<(), FleetError> {
    let fine = !namespace.is_empty()
        && namespace.len() <= MAX_NAMESPACE
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if fine {
        return Ok(());
    }
    Err(FleetError::Config(format!(
        "{source}={namespace:?}: a namespace is 1 to {MAX_NAMESPACE} letters, digits, '-', '_' or '.'"
    )))
}

/// The executable's file name, made fit for a namespace.
fn program_name() -> String {
    let name = std::env::current_exe()
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAMESPACE)
        .collect();
    if name.is_empty() {
        "clustered".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn from_lookup_reads_url_and_namespace() {
        assert_eq!(FleetConfig::from_lookup(lookup(&[])).unwrap(), None);
        let config = FleetConfig::from_lookup(lookup(&[
            (ENV_URL, "redis+unix:///tmp/r.sock"),
            (ENV_NAMESPACE, "shop"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.namespace, "shop");
        let config = FleetConfig::from_lookup(lookup(&[(ENV_URL, "redis://127.0.0.1")]))
            .unwrap()
            .unwrap();
        assert!(!config.namespace.is_empty());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = FleetConfig::from_lookup(lookup(&[(ENV_URL, "http://x")])).unwrap_err();
        assert!(err.to_string().contains(ENV_URL), "{err}");
        let err =
            FleetConfig::from_lookup(lookup(&[(ENV_URL, "redis://x"), (ENV_NAMESPACE, "a b")]))
                .unwrap_err();
        assert!(err.to_string().contains(ENV_NAMESPACE), "{err}");
    }
}
