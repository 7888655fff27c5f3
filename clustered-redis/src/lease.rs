//! The fleet's one lease ([`Fleet::lease`]): at most one holder at a time, taken with
//! `SET NX PX` (in a script that also draws the fencing token with `INCR`), renewed by a script
//! that checks the holder, and given up by the holder itself once it could not renew it for
//! three quarters of its time (before anyone else can take it).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::fleet::Fleet;
use crate::{FleetError, numbers};

/// Whoever holds the lease, and its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's [`Fleet::id`].
    pub id: String,
    /// The token drawn when it took the lease (every acquisition draws a larger one).
    pub token: u64,
}

/// This member's part in the lease: a task takes it when it is free and renews it while
/// held. [`LeaseWatch::token`] is `Some` while this member holds it. Dropping the watch stops
/// the task (the lease then runs out).
#[derive(Debug)]
pub struct LeaseWatch {
    token: watch::Receiver<Option<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LeaseWatch {
    /// The fencing token while this member holds the lease.
    pub fn token(&self) -> Option<u64> {
        *self.token.borrow()
    }

    /// The token, as it changes (`None`: not held).
    pub fn watch(&self) -> watch::Receiver<Option<u64>> {
        self.token.clone()
    }

    /// Waits for the next change; `None` once the task is gone.
    pub async fn changed(&mut self) -> Option<Option<u64>> {
        self.token.changed().await.ok()?;
        Some(*self.token.borrow())
    }
}

/// Takes the lease when it is free: `ARGV[1]` the holder, `ARGV[2]` the time in ms.
const ACQUIRE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. string.format('%d', token), 'PX', ARGV[2])
return token
"#;

/// Renews the lease if `ARGV[1]` (holder and token) still holds it.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

impl Fleet {
    /// Takes part in the fleet's lease of `ttl`: held by one member at a time; another takes
    /// it within `ttl` of its holder's last renewal.
    pub fn lease(&self, ttl: Duration) -> LeaseWatch {
        let ttl = ttl.max(Duration::from_millis(300));
        let (sender, token) = watch::channel(None);
        let fleet = self.clone();
        let task = tokio::spawn(async move { hold(fleet, ttl, sender).await });
        LeaseWatch { token, task }
    }

    /// Who holds the lease now, if anyone.
    pub async fn lease_holder(&self) -> Result<Option<LeaseHolder>, FleetError> {
        let value: redis::Value = self
            .run(redis::cmd("GET").arg(self.inner.keys.lease()))
            .await?;
        Ok(numbers::text(&value).and_then(|text| parse_holder(&text)))
    }

    /// Whether `token` is the current holder's: work started under an older one is refused.
    pub async fn fence_valid(&self, token: u64) -> Result<bool, FleetError> {
        Ok(self
            .lease_holder()
            .await?
            .is_some_and(|holder| holder.token == token))
    }

    async fn try_acquire(&self, ttl: Duration) -> Result<Option<u64>, FleetError> {
        let script = redis::Script::new(ACQUIRE);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.inner.keys.lease())
            .key(self.inner.keys.fence())
            .arg(&self.inner.id)
            .arg(millis(ttl));
        let value = self.invoke(&invocation).await?;
        if value == redis::Value::Nil {
            return Ok(None);
        }
        Ok(Some(numbers::integer(&value)?.max(0) as u64))
    }

    async fn renew(&self, token: u64, ttl: Duration) -> Result<bool, FleetError> {
        let script = redis::Script::new(RENEW);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.inner.keys.lease())
            .arg(format!("{} {token}", self.inner.id))
            .arg(millis(ttl));
        let value = self.invoke(&invocation).await?;
        Ok(numbers::integer(&value)? == 1)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `"id token"`, the lease key's value.
fn parse_holder(text: &str) -> Option<LeaseHolder> {
    let (id, token) = text.rsplit_once(' ')?;
    Some(LeaseHolder {
        id: id.to_owned(),
        token: token.parse().ok()?,
    })
}

/// The lease task: take it when free, renew it every quarter of `ttl`, give it up once not
/// renewed for three quarters.
async fn hold(fleet: Fleet, ttl: Duration, sender: watch::Sender<Option<u64>>) {
    let renew_every = ttl / 4;
    let poll_free = (ttl / 10).clamp(Duration::from_millis(50), Duration::from_millis(500));
    let give_up_after = ttl * 3 / 4;
    let mut held: Option<(u64, Instant)> = None;
    loop {
        let started = Instant::now();
        match held {
            Some((token, since)) => match fleet.renew(token, ttl).await {
                Ok(true) => held = Some((token, started)),
                Ok(false) => {
                    tracing::warn!(token, "the fleet lease was taken over; giving it up");
                    held = None;
                }
                Err(error) if since.elapsed() >= give_up_after => {
                    tracing::warn!(token, %error, "the fleet lease could not be renewed in time; giving it up");
                    held = None;
                }
                Err(error) => tracing::debug!(%error, "renewing the fleet lease failed; retrying"),
            },
            None => match fleet.try_acquire(ttl).await {
                Ok(Some(token)) => {
                    tracing::info!(token, "took the fleet lease");
                    held = Some((token, started));
                }
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "the fleet lease cannot be taken now"),
            },
        }
        if let Some((_, since)) = held
            && since.elapsed() >= give_up_after
        {
            held = None;
        }
        let token = held.map(|(token, _)| token);
        sender.send_if_modified(|current| {
            let changed = *current != token;
            *current = token;
            changed
        });
        let wait = match held {
            Some((_, since)) => renew_every.min(give_up_after.saturating_sub(since.elapsed())),
            None => poll_free,
        };
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_parse_or_not() {
        let holder = parse_holder("host-1-abc 42").unwrap();
        assert_eq!(holder.id, "host-1-abc");
        assert_eq!(holder.token, 42);
        assert_eq!(parse_holder("nospace"), None);
        assert_eq!(parse_holder("a -3"), None);
    }
}
