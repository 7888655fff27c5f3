//! The agent with real processes (`examples/agent.rs`): a child of the master that never
//! serves HTTP, whose ticks grow and whose broadcasts reach the workers; SIGKILLed, a new one answers within seconds while the
//! workers stay the same, and a request meanwhile fails with a clear error or waits, never
//! hangs; a reload replaces it and every worker.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Program, children_of, get, signal_pid};
use rustix::process::Signal;

/// `/agent`'s answer: (agent pid, ticks), or the error's status and body.
async fn ask(address: SocketAddr) -> Result<(u32, u64), (u16, String)> {
    let reply = get(address, "/agent").await;
    if reply.status != 200 {
        return Err((reply.status, reply.body));
    }
    let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let pid = json["agent_pid"].as_u64().expect("agent_pid") as u32;
    Ok((pid, json["ticks"].as_u64().expect("ticks")))
}

/// The pids that answered 40 `/whoami`s.
async fn serving_pids(address: SocketAddr) -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    for _ in 0..40 {
        pids.insert(get(address, "/whoami").await.whoami_pid());
    }
    pids
}

/// Asks until the agent answers with a pid other than `old`, for at most `limit`.
async fn new_agent(address: SocketAddr, old: u32, limit: Duration) -> Option<u32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok((pid, _)) = ask(address).await
            && pid != old
        {
            return Some(pid);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_ticks_serves_no_http_and_comes_back_alone_when_killed() {
    let env = [("CLUSTER_WORKERS", "2")];
    let (cluster, address) = ClusterProcess::start(Program::Example("agent"), &env);
    let (agent, ticks) = ask(address).await.expect("the agent answers");
    let children: BTreeSet<u32> = children_of(cluster.pid()).into_iter().collect();
    assert!(
        children.contains(&agent),
        "the agent is a child of the master"
    );
    assert_eq!(children.len(), 3, "the agent and 2 workers: {children:?}");
    let workers = serving_pids(address).await;
    assert!(!workers.contains(&agent), "the agent serves no HTTP");
    assert_eq!(workers.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut later = ticks;
    while later <= ticks && Instant::now() < deadline {
        (_, later) = ask(address).await.expect("the agent answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(later > ticks, "ticks grow: {ticks} then {later}");
    // The agent's broadcasts reach the workers (every 10 ticks).
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(address, "/heard").await.body.trim() == "0" {
        assert!(
            Instant::now() < deadline,
            "no broadcast from the agent heard"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let killed = Instant::now();
    signal_pid(agent, Signal::KILL);
    // Right after: an answer (from the new agent) or a clear error, within the timeout.
    match tokio::time::timeout(Duration::from_secs(6), ask(address)).await {
        Ok(Ok((pid, _))) => assert_ne!(pid, agent),
        Ok(Err((status, body))) => {
            assert_eq!(status, 503);
            assert!(body.contains("agent"), "{body}");
        }
        Err(_) => panic!("a request for the agent hung"),
    }
    let successor = new_agent(address, agent, Duration::from_secs(2))
        .await
        .expect("a new agent within 2 s");
    eprintln!(
        "a new agent answered {:?} after the SIGKILL",
        killed.elapsed()
    );
    let children: BTreeSet<u32> = children_of(cluster.pid()).into_iter().collect();
    assert!(children.contains(&successor));
    assert_eq!(
        serving_pids(address).await,
        workers,
        "the workers stay the same"
    );

    // A reload replaces the agent and every worker.
    cluster.signal(Signal::HUP);
    let reloaded = new_agent(address, successor, Duration::from_secs(30)).await;
    assert!(reloaded.is_some(), "a new agent after the reload");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serving_pids(address).await.is_disjoint(&workers) {
        assert!(
            Instant::now() < deadline,
            "the workers are not all replaced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
