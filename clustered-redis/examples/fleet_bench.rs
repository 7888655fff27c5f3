//! Measures the fleet on a real Redis (`CLUSTER_REDIS_URL`): three members (as three masters),
//! one broadcasting timestamped messages that the other two receive (latency p50/p99, and
//! throughput), then all three adding to one counter as fast as they can (increments per
//! second, with 16 in flight per member). `benches/fleet.sh` starts a Redis and runs it.

use std::time::{Duration, Instant};

use clustered_redis::{Fleet, FleetConfig};
use serde_json::json;

const MESSAGES: usize = 20_000;
const COUNTING: Duration = Duration::from_secs(3);
const IN_FLIGHT: usize = 16;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = FleetConfig::from_env()?
        .ok_or("set CLUSTER_REDIS_URL")?
        .with_namespace("bench")?;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(Fleet::connect(&config).await?);
    }
    let epoch = Instant::now();
    let mut listeners = Vec::new();
    for member in &members[1..] {
        let mut messages = member.messages();
        listeners.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(MESSAGES);
            while latencies.len() < MESSAGES {
                let Some(message) = messages.recv().await else {
                    break;
                };
                let sent = message.data.as_u64().unwrap_or(0);
                let now = epoch.elapsed().as_micros() as u64;
                latencies.push(now.saturating_sub(sent));
            }
            (latencies, messages.missed())
        }));
    }
    let started = Instant::now();
    for _ in 0..MESSAGES {
        let now = epoch.elapsed().as_micros() as u64;
        members[0].publish(&json!(now)).await?;
    }
    let sent_in = started.elapsed();
    for listener in listeners {
        let (mut latencies, missed) = listener.await?;
        let received_in = started.elapsed();
        latencies.sort_unstable();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!(
            "broadcast: {} messages sent in {:.2?} ({:.0}/s), received in {:.2?}; latency p50 {} µs, p99 {} µs; missed {missed}",
            MESSAGES,
            sent_in,
            MESSAGES as f64 / sent_in.as_secs_f64(),
            received_in,
            at(0.50),
            at(0.99),
        );
    }
    let before = members[0].counter_get("bench-hits").await?;
    let started = Instant::now();
    let mut adders = Vec::new();
    for member in &members {
        for _ in 0..IN_FLIGHT {
            let member = member.clone();
            adders.push(tokio::spawn(async move {
                let mut done = 0u64;
                while started.elapsed() < COUNTING {
                    if member.counter_add("bench-hits", 1).await.is_ok() {
                        done += 1;
                    }
                }
                done
            }));
        }
    }
    let mut total = 0;
    for adder in adders {
        total += adder.await?;
    }
    let elapsed = started.elapsed();
    let after = members[0].counter_get("bench-hits").await?;
    println!(
        "counter: {total} increments from 3 members in {elapsed:.2?} ({:.0}/s); exact: {}",
        total as f64 / elapsed.as_secs_f64(),
        after - before == total as i64
    );
    Ok(())
}
