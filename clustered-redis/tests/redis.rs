//! The fleet over a real `redis-server` (the testkit's, on a Unix socket).

use std::time::Duration;

use clustered_redis::{Fleet, FleetConfig, FleetError, MasterInfo};
use clustered_testkit::RedisServer;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn config(redis: &RedisServer, namespace: &str) -> FleetConfig {
    FleetConfig::new(redis.url())
        .unwrap()
        .with_namespace(namespace)
        .unwrap()
}

async fn members(redis: &RedisServer, namespace: &str, n: usize) -> Vec<Fleet> {
    let mut fleets = Vec::new();
    for _ in 0..n {
        fleets.push(Fleet::connect(&config(redis, namespace)).await.unwrap());
    }
    fleets
}

async fn until(mut condition: impl FnMut() -> bool) -> bool {
    tokio::time::timeout(WAIT, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn broadcasts_arrive_once_in_order_and_never_echo() {
    let redis = RedisServer::start();
    let fleets = members(&redis, "bcast", 3).await;
    let mut heard: Vec<_> = fleets.iter().map(Fleet::messages).collect();
    for i in 0..300 {
        fleets[0].publish(&json!(i)).await.unwrap();
    }
    fleets[1].publish(&json!("end")).await.unwrap();
    for listener in &mut heard[1..] {
        for i in 0..300 {
            let message = tokio::time::timeout(WAIT, listener.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(message.data, json!(i));
            assert_eq!(message.from, fleets[0].id());
        }
    }
    // The sender hears the other's last message and none of its own.
    let last = tokio::time::timeout(WAIT, heard[0].recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.data, json!("end"));
    assert_eq!(heard[0].try_recv(), None);
    assert_eq!(heard[2].recv().await.unwrap().data, json!("end"));
    assert_eq!(
        heard[1].try_recv(),
        None,
        "the sender of `end` heard itself"
    );
    assert_eq!(heard[2].try_recv(), None, "a message arrived twice");
}

#[tokio::test]
async fn send_to_reaches_one_member_or_fails() {
    let redis = RedisServer::start();
    let fleets = members(&redis, "inbox", 2).await;
    let mut inbox = fleets[1].inbox();
    fleets[0]
        .send_to(fleets[1].id(), &json!({"hi": 1}))
        .await
        .unwrap();
    let message = tokio::time::timeout(WAIT, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.from, fleets[0].id());
    let err = fleets[0].send_to("nobody", &json!(1)).await.unwrap_err();
    assert!(matches!(err, FleetError::NoSuchMember(_)), "{err}");
}

#[tokio::test]
async fn counters_are_exact_across_members() {
    let redis = RedisServer::start();
    let fleets = members(&redis, "count", 3).await;
    let mut updates = fleets[2].counter_updates();
    let mut tasks = Vec::new();
    for fleet in &fleets {
        let fleet = fleet.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                fleet.counter_add("hits", 1).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for fleet in &fleets {
        assert_eq!(fleet.counter_get("hits").await.unwrap(), 600);
    }
    let mut last = 0;
    while last < 600 {
        let update = tokio::time::timeout(WAIT, updates.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(update.name, "hits");
        assert!(
            update.value > last,
            "updates out of order: {} after {last}",
            update.value
        );
        last = update.value;
    }
    assert_eq!(fleets[0].counter_get("never").await.unwrap(), 0);
    // A value that is not a number is an error, never a panic.
    redis.command(&["SET", "count:counter:junk", "abc"]);
    assert!(fleets[0].counter_get("junk").await.is_err());
    redis.command(&["SET", "count:counter:big", "123456789012345678901234567890"]);
    assert_eq!(fleets[0].counter_get("big").await.unwrap(), i64::MAX);
}

#[tokio::test]
async fn the_lease_has_one_holder_fails_over_and_fences() {
    let redis = RedisServer::start();
    let fleets = members(&redis, "lease", 3).await;
    let ttl = Duration::from_millis(800);
    let mut leases: Vec<_> = fleets.iter().map(|fleet| Some(fleet.lease(ttl))).collect();
    let holders = |leases: &Vec<Option<clustered_redis::LeaseWatch>>| {
        leases
            .iter()
            .enumerate()
            .filter_map(|(i, lease)| lease.as_ref()?.token().map(|token| (i, token)))
            .collect::<Vec<_>>()
    };
    assert!(
        until(|| !holders(&leases).is_empty()).await,
        "nobody took the lease"
    );
    tokio::time::sleep(ttl).await;
    let held = holders(&leases);
    assert_eq!(held.len(), 1, "{held:?}");
    let (first, token) = held[0];
    let holder = fleets[0].lease_holder().await.unwrap().unwrap();
    assert_eq!(
        (holder.id.as_str(), holder.token),
        (fleets[first].id(), token)
    );
    assert!(fleets[1].fence_valid(token).await.unwrap());
    // The holder stops renewing (as a dead master does): another takes over, with a larger token.
    leases[first] = None;
    assert!(
        until(|| !holders(&leases).is_empty()).await,
        "nobody took over"
    );
    let held = holders(&leases);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_ne!(held[0].0, first);
    assert!(held[0].1 > token);
    assert!(
        !fleets[0].fence_valid(token).await.unwrap(),
        "the old token still passes"
    );
    assert!(fleets[0].fence_valid(held[0].1).await.unwrap());
}

#[tokio::test]
async fn heartbeats_list_the_live_masters() {
    let redis = RedisServer::start();
    let fleets = members(&redis, "beat", 2).await;
    for (i, fleet) in fleets.iter().enumerate() {
        let info = MasterInfo {
            id: fleet.id().to_owned(),
            host: fleet.host(),
            pid: std::process::id(),
            workers: i + 1,
            uptime_secs: 3,
            port: Some(8000 + i as u16),
            agent: false,
        };
        fleet.announce(&info, Duration::from_secs(5)).await.unwrap();
    }
    let listed = fleets[0].list_masters().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let info = fleets[0]
        .master_info(fleets[1].id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.workers, 2);
    fleets[1].withdraw().await.unwrap();
    assert_eq!(fleets[0].list_masters().await.unwrap().len(), 1);
    // Junk under the namespace is left out.
    redis.command(&["SET", "beat:master:junk", "{"]);
    assert_eq!(fleets[0].list_masters().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_killed_redis_fails_operations_then_comes_back_with_its_subscriptions() {
    let mut redis = RedisServer::start();
    let fleets = members(&redis, "fault", 2).await;
    let mut heard = fleets[1].messages();
    let mut counted = fleets[1].counter_updates();
    fleets[0].publish(&json!("before")).await.unwrap();
    assert_eq!(heard.recv().await.unwrap().data, json!("before"));

    redis.kill9();
    assert!(
        until(|| fleets.iter().all(|f| !f.is_up())).await,
        "still up"
    );
    let err = fleets[0].publish(&json!("lost")).await.unwrap_err();
    assert!(matches!(err, FleetError::Down { .. }), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(fleets[0].counter_add("c", 1).await.is_err());
    assert!(fleets[0].counter_get("c").await.is_err());

    redis.restart();
    assert!(
        until(|| fleets.iter().all(Fleet::is_up)).await,
        "did not come back"
    );
    assert!(fleets.iter().all(|f| f.reconnects() >= 1));
    fleets[0].publish(&json!("after")).await.unwrap();
    let message = tokio::time::timeout(WAIT, heard.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        message.data,
        json!("after"),
        "the subscription was not restored"
    );
    fleets[0].counter_add("c", 5).await.unwrap();
    let update = tokio::time::timeout(WAIT, counted.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(update.value, 5);
}

#[tokio::test]
async fn a_lazy_member_fails_until_redis_is_there() {
    let dir = std::env::temp_dir().join(format!("clustered-lazy-{}", std::process::id()));
    let url = format!("redis+unix://{}/none.sock", dir.display());
    let fleet = Fleet::connect_lazy(&FleetConfig::new(url).unwrap()).unwrap();
    let err = fleet.counter_add("x", 1).await.unwrap_err();
    assert!(matches!(err, FleetError::Down { .. }), "{err}");
    assert!(!fleet.is_up());
    let err = FleetConfig::new("http://nope").unwrap_err();
    assert!(err.to_string().contains("redis://"), "{err}");
}
