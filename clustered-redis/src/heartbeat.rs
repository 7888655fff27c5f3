//! Heartbeats: each master keeps a key of its own (`<namespace>:master:<id>`) with a TTL,
//! refreshed while it runs, which `clusterctl fleet` lists.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fleet::Fleet;
use crate::{FleetError, numbers};

/// What a master says of itself in its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfo {
    /// Its [`Fleet::id`].
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// How many workers it runs.
    pub workers: usize,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Its first TCP port, if it listens on one.
    pub port: Option<u16>,
    /// Whether its agent runs (it holds the fleet's lease).
    #[serde(default)]
    pub agent: bool,
}

/// Heartbeat keys read per `SCAN` step.
const SCAN_COUNT: usize = 256;
/// Masters listed at most.
const MAX_LISTED: usize = 10_000;

impl Fleet {
    /// The host name this member reports.
    pub fn host(&self) -> String {
        crate::host::host_name()
    }

    /// Writes this member's heartbeat, which lives for `ttl` unless written again.
    pub async fn announce(&self, info: &MasterInfo, ttl: Duration) -> Result<(), FleetError> {
        let json = serde_json::to_string(info).map_err(|e| FleetError::Redis(e.to_string()))?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.inner.keys.master(&self.inner.id);
        let _: () = self
            .run(redis::cmd("SET").arg(key).arg(json).arg("PX").arg(ms))
            .await?;
        Ok(())
    }

    /// Removes this member's heartbeat.
    pub async fn withdraw(&self) -> Result<(), FleetError> {
        let key = self.inner.keys.master(&self.inner.id);
        let _: i64 = self.run(redis::cmd("DEL").arg(key)).await?;
        Ok(())
    }

    /// The heartbeat of member `id`, if it is alive.
    pub async fn master_info(&self, id: &str) -> Result<Option<MasterInfo>, FleetError> {
        let value: redis::Value = self
            .run(redis::cmd("GET").arg(self.inner.keys.master(id)))
            .await?;
        Ok(numbers::text(&value).and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Every live member's heartbeat, by id (a heartbeat that does not parse is left out).
    pub async fn list_masters(&self) -> Result<Vec<MasterInfo>, FleetError> {
        let mut cursor: u64 = 0;
        let mut keys: Vec<String> = Vec::new();
        loop {
            let (next, batch): (String, Vec<String>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(self.inner.keys.masters_pattern())
                        .arg("COUNT")
                        .arg(SCAN_COUNT),
                )
                .await?;
            keys.extend(batch);
            cursor = next.parse().unwrap_or(0);
            if cursor == 0 || keys.len() >= MAX_LISTED {
                break;
            }
        }
        let mut masters = Vec::new();
        for chunk in keys.chunks(SCAN_COUNT) {
            let values: Vec<redis::Value> = self.run(redis::cmd("MGET").arg(chunk)).await?;
            masters.extend(
                values
                    .iter()
                    .filter_map(numbers::text)
                    .filter_map(|json| serde_json::from_str::<MasterInfo>(&json).ok()),
            );
        }
        masters.sort_by(|a, b| a.id.cmp(&b.id));
        masters.dedup_by(|a, b| a.id == b.id);
        Ok(masters)
    }
}
