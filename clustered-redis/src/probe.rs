//! The probe: it finds out whether Redis is reachable (a `PING` every 200 ms, and at once when
//! the connection drops), and after every reconnect subscribes this member's channels again and
//! checks, by a message to itself, that they are really back before it says the fleet is up.
//! The connection manager resubscribes too, but ignores a failure of doing so: a member that
//! lost its subscriptions would stay deaf (socket.io's redis-adapter bug). Every second while up
//! the echo is checked again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::FleetError;
use crate::fleet::Fleet;

/// How often the probe pings.
const PING_EVERY: Duration = Duration::from_millis(200);
/// How often, while up, it checks that its own message comes back.
const ECHO_EVERY: Duration = Duration::from_secs(1);
/// How long it waits for its message to come back.
const ECHO_TIMEOUT: Duration = Duration::from_secs(1);

impl Fleet {
    /// Starts the probe (`connected`: this member is up already).
    pub(crate) fn start_probe(&self, connected: bool) {
        let weak = Arc::downgrade(&self.inner);
        let mut disconnections = self.inner.hub.disconnections.subscribe();
        let task = tokio::spawn(async move {
            let mut ever_up = connected;
            let mut last_echo = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(PING_EVERY) => {}
                    _ = disconnections.recv() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let fleet = Fleet { inner };
                probe_once(&fleet, &mut ever_up, &mut last_echo).await;
            }
        });
        if let Ok(mut probe) = self.inner.probe.lock() {
            *probe = Some(task);
        }
    }

    /// Subscribes every channel of this member (again: subscribing twice is harmless).
    pub(crate) async fn subscribe_all(&self) -> Result<(), FleetError> {
        let mut conn = self.inner.conn.clone();
        for channel in self.inner.hub.channels() {
            conn.subscribe(&channel)
                .await
                .map_err(|error| self.failed(error))?;
        }
        Ok(())
    }

    /// Publishes a nonce on this member's probe channel and waits for it to come back.
    pub(crate) async fn echo(&self) -> Result<(), FleetError> {
        let mut probes = self.inner.hub.probes.subscribe();
        let nonce = format!("{:?}", Instant::now());
        let channel = self.inner.keys.probe(&self.inner.id);
        let _: i64 = self
            .run_now(redis::cmd("PUBLISH").arg(channel).arg(&nonce))
            .await?;
        let heard = tokio::time::timeout(ECHO_TIMEOUT, async {
            while let Ok(echo) = probes.recv().await {
                if echo == nonce {
                    return true;
                }
            }
            false
        })
        .await;
        match heard {
            Ok(true) => Ok(()),
            _ => Err(FleetError::Redis(
                "this member's subscriptions did not answer; subscribing again".into(),
            )),
        }
    }
}

async fn probe_once(fleet: &Fleet, ever_up: &mut bool, last_echo: &mut Instant) {
    if fleet.inner.closed.load(Ordering::Relaxed) {
        return;
    }
    let pinged: Result<String, FleetError> = fleet.run_now(&redis::cmd("PING")).await;
    if pinged.is_err() {
        return; // `failed` marked the fleet down and logged it
    }
    let up = fleet.is_up();
    if up && last_echo.elapsed() < ECHO_EVERY {
        return;
    }
    *last_echo = Instant::now();
    let checked = match up {
        true => fleet.echo().await,
        false => match fleet.subscribe_all().await {
            Ok(()) => fleet.echo().await,
            Err(error) => Err(error),
        },
    };
    match checked {
        Ok(()) if !up => {
            fleet.inner.up.send_replace(true);
            if std::mem::replace(ever_up, true) {
                fleet.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(url = %fleet.inner.url, "Redis is back; subscriptions checked");
            } else {
                tracing::info!(url = %fleet.inner.url, "connected to Redis");
            }
        }
        Ok(()) => {}
        Err(error) => {
            if up {
                tracing::warn!(%error, "fleet subscriptions lost; subscribing again");
            }
            fleet.inner.up.send_replace(false);
            if let Ok(mut last) = fleet.inner.last_error.lock() {
                *last = error.to_string();
            }
        }
    }
}
