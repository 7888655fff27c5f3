//! [`Fleet`]: one member's connection to the fleet's Redis, and what it does with it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, ProtocolVersion};
use tokio::sync::watch;

use crate::hub::{Envelope, Hub};
use crate::keys::Keys;
use crate::messages::{CounterUpdate, FleetMessage};
use crate::subscription::Subscription;
use crate::{FleetConfig, FleetError, numbers};

/// How long one command may take before it fails (a slow Redis is a failed operation, not a
/// wait without end).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// One member's connection to the fleet: cheap to clone (every clone is the same member).
#[derive(Clone)]
pub struct Fleet {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("id", &self.inner.id)
            .field("namespace", &self.inner.namespace)
            .field("up", &self.is_up())
            .finish()
    }
}

/// What every clone of a [`Fleet`] shares.
pub(crate) struct Inner {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) namespace: String,
    pub(crate) keys: Keys,
    pub(crate) conn: ConnectionManager,
    pub(crate) hub: Arc<Hub>,
    pub(crate) up: watch::Sender<bool>,
    pub(crate) last_error: Mutex<String>,
    pub(crate) reconnects: AtomicU64,
    pub(crate) closed: AtomicBool,
    pub(crate) probe: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut probe) = self.probe.lock()
            && let Some(task) = probe.take()
        {
            task.abort();
        }
    }
}

impl Fleet {
    /// Connects to the fleet's Redis and subscribes to this member's channels; fails when
    /// Redis cannot be reached now.
    pub async fn connect(config: &FleetConfig) -> Result<Self, FleetError> {
        let fleet = Self::build(config)?;
        fleet.subscribe_all().await?;
        fleet.echo().await?;
        fleet.inner.up.send_replace(true);
        fleet.start_probe(true);
        Ok(fleet)
    }

    /// A member that connects in the background: usable at once, its operations failing
    /// with [`FleetError::Down`] until Redis is reached (see [`Fleet::up_watch`]).
    pub fn connect_lazy(config: &FleetConfig) -> Result<Self, FleetError> {
        let fleet = Self::build(config)?;
        fleet.start_probe(false);
        Ok(fleet)
    }

    fn build(config: &FleetConfig) -> Result<Self, FleetError> {
        let bad_url = |error: redis::RedisError| {
            FleetError::Config(format!(
                "the Redis URL {:?} does not parse ({error}); give redis://host:port or redis+unix:///path",
                config.url
            ))
        };
        let info = redis::Client::open(config.url.as_str())
            .map_err(bad_url)?
            .get_connection_info()
            .clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(bad_url)?;
        let id = member_id();
        let keys = Keys::new(&config.namespace);
        let hub = Arc::new(Hub::new(&id, &keys));
        let dispatch = {
            let hub = hub.clone();
            move |push: redis::PushInfo| -> Result<(), redis::aio::SendError> {
                hub.dispatch(push);
                Ok(())
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_push_sender(dispatch)
            .set_automatic_resubscription()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|error| FleetError::Config(format!("the Redis client: {error}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                id,
                url: config.url.clone(),
                namespace: config.namespace.clone(),
                keys,
                conn,
                hub,
                up: watch::channel(false).0,
                last_error: Mutex::new("not connected yet".into()),
                reconnects: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                probe: Mutex::new(None),
            }),
        })
    }

    /// This member's id in the fleet (host, pid and a random part): what [`Fleet::send_to`]
    /// and [`FleetMessage::from`] name.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The namespace this member is in.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Sends `data` to every other member of the namespace (each hears it once, in the order
    /// this member sent them; this member does not hear it).
    pub async fn publish(&self, data: &serde_json::Value) -> Result<(), FleetError> {
        let payload = self.envelope(data)?;
        let channel = self.inner.keys.broadcast();
        let _: i64 = self
            .run(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await?;
        Ok(())
    }

    /// What other members broadcast, from now on.
    pub fn messages(&self) -> Subscription<FleetMessage> {
        Subscription::new(self.inner.hub.messages.subscribe())
    }

    /// Sends `data` to the member `id` alone; fails when it is not listening.
    pub async fn send_to(&self, id: &str, data: &serde_json::Value) -> Result<(), FleetError> {
        let payload = self.envelope(data)?;
        let channel = self.inner.keys.inbox(id);
        let receivers: i64 = self
            .run(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await?;
        if receivers == 0 {
            return Err(FleetError::NoSuchMember(id.to_owned()));
        }
        Ok(())
    }

    /// What other members sent this one with [`Fleet::send_to`], from now on.
    pub fn inbox(&self) -> Subscription<FleetMessage> {
        Subscription::new(self.inner.hub.inbox.subscribe())
    }

    /// Adds `by` to the fleet-wide counter `name` (`INCRBY`) and returns its value after
    /// that; the change is published to every member's [`Fleet::counter_updates`], in the
    /// order Redis applied the changes.
    pub async fn counter_add(&self, name: &str, by: i64) -> Result<i64, FleetError> {
        let script = redis::Script::new(COUNTER_ADD);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.inner.keys.counter(name))
            .arg(by)
            .arg(self.inner.keys.counter_updates())
            .arg(name);
        numbers::integer(&self.invoke(&invocation).await?)
    }

    /// The fleet-wide counter `name` (0 if never changed).
    pub async fn counter_get(&self, name: &str) -> Result<i64, FleetError> {
        let value: redis::Value = self
            .run(redis::cmd("GET").arg(self.inner.keys.counter(name)))
            .await?;
        numbers::integer(&value)
    }

    /// Every counter change in the fleet (this member's too), from now on.
    pub fn counter_updates(&self) -> Subscription<CounterUpdate> {
        Subscription::new(self.inner.hub.counters.subscribe())
    }

    /// Whether Redis is reachable and this member's subscriptions are in place.
    pub fn is_up(&self) -> bool {
        *self.inner.up.borrow()
    }

    /// [`Fleet::is_up`], as it changes.
    pub fn up_watch(&self) -> watch::Receiver<bool> {
        self.inner.up.subscribe()
    }

    /// How many times the connection came back after it was lost.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    /// Stops the probe and removes this member's heartbeat (best effort); every operation
    /// fails from now on.
    pub async fn shutdown(&self) {
        let _ = self.withdraw().await;
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.up.send_replace(false);
        if let Ok(mut probe) = self.inner.probe.lock()
            && let Some(task) = probe.take()
        {
            task.abort();
        }
    }

    fn envelope(&self, data: &serde_json::Value) -> Result<String, FleetError> {
        let envelope = Envelope {
            from: self.inner.id.clone(),
            data: data.clone(),
        };
        serde_json::to_string(&envelope).map_err(|error| FleetError::Redis(error.to_string()))
    }

    /// Fails at once when Redis is known to be unreachable.
    pub(crate) fn check_up(&self) -> Result<(), FleetError> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(FleetError::Closed);
        }
        if self.is_up() {
            return Ok(());
        }
        Err(self.down(None))
    }

    pub(crate) fn down(&self, reason: Option<String>) -> FleetError {
        let reason = match reason {
            Some(reason) => reason,
            None => self
                .inner
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default(),
        };
        FleetError::Down {
            url: self.inner.url.clone(),
            reason,
        }
    }

    /// Runs one script (failing at once while Redis is down).
    pub(crate) async fn invoke(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<redis::Value, FleetError> {
        self.check_up()?;
        let mut conn = self.inner.conn.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|error| self.failed(error))
    }

    /// Runs one command (failing at once while Redis is down).
    pub(crate) async fn run<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, FleetError> {
        self.check_up()?;
        self.run_now(cmd).await
    }

    /// Runs one command whether or not Redis is thought up (the probe's).
    pub(crate) async fn run_now<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, FleetError> {
        let mut conn = self.inner.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|error| self.failed(error))
    }

    /// What a failed command means: Redis away (noted for the probe) or a refusal.
    pub(crate) fn failed(&self, error: redis::RedisError) -> FleetError {
        let away = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error();
        if away {
            if let Ok(mut last) = self.inner.last_error.lock() {
                *last = error.to_string();
            }
            if self.inner.up.send_replace(false) {
                tracing::warn!(url = %self.inner.url, %error, "Redis unreachable; fleet operations fail until it is back");
            }
            return self.down(Some(error.to_string()));
        }
        FleetError::Redis(error.to_string())
    }
}

/// `INCRBY` and the publication of the new value, in one step so that updates are published
/// in the order Redis applied them.
const COUNTER_ADD: &str = r#"
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], '{"name":' .. cjson.encode(ARGV[3]) .. ',"value":' .. string.format('%d', value) .. '}')
return value
"#;

/// `host-pid-random`: unique among the members, readable in a listing.
fn member_id() -> String {
    let host = crate::host::host_name();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    static MADE: AtomicU64 = AtomicU64::new(0);
    let made = MADE.fetch_add(1, Ordering::Relaxed) as u32;
    let salt = (nanos ^ made.wrapping_mul(0x9e37_79b9)) & 0x00ff_ffff;
    format!("{host}-{}-{salt:06x}", std::process::id())
}
