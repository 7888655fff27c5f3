//! Watch mode with real processes (`CLUSTER_WATCH=1`): the master runs a copy of the fixture;
//! replacing that file by another program (copy + rename, as a build does) under a steady
//! request loop switches the answers to the new program within seconds, with no failed
//! request; a broken new file aborts that reload and the workers keep serving.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Connections, Load, Program, get};

/// A directory of its own, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Puts `contents` at `path` the way a build does: written beside it, then renamed over it.
fn replace(path: &Path, contents: &[u8]) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, contents).expect("write the new file");
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&staged, path).expect("rename it into place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_executable_reloads_into_the_new_program_and_a_broken_one_changes_nothing() {
    let dir = TempDir(std::env::temp_dir().join(format!("cluster-watch-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("a temporary directory");
    let app = dir.0.join("app");
    std::fs::copy(Program::Fixture.path(), &app).expect("copy the fixture");
    let hello = std::fs::read(Program::Example("hello").path()).expect("the hello example");
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_WATCH", "1")];
    let (cluster, address) = ClusterProcess::start_path(&app, &env);
    assert_eq!(get(address, "/").await.body, "fixture\n");

    let load = Load::start(address, "/", 4, Connections::PerRequest);
    assert!(
        load.wait_for(200, Duration::from_secs(30)).await,
        "load runs"
    );
    replace(&app, &hello);
    let replaced = Instant::now();
    let deadline = replaced + Duration::from_secs(10);
    let mut body = String::new();
    while Instant::now() < deadline {
        body = get(address, "/").await.body;
        if body != "fixture\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(body, "fixture\n", "still the old program after 10 s");
    eprintln!("answers switched {:?} after the rename", replaced.elapsed());
    assert!(
        cluster
            .wait_for_line("event: reload-finished", Duration::from_secs(20))
            .is_some(),
        "the reload finishes"
    );
    let served = load.completed();
    assert!(
        load.wait_for(served + 200, Duration::from_secs(30)).await,
        "load goes on"
    );
    let report = load.stop().await;
    report.assert_all_2xx("reload into the new program");

    // A broken build: the reload it starts is aborted, the workers go on serving.
    replace(&app, b"#!/bin/sh\necho 'broken build' >&2\nexit 3\n");
    assert!(
        cluster
            .wait_for_line("event: reload-failed", Duration::from_secs(20))
            .is_some(),
        "the reload is aborted"
    );
    let reply = get(address, "/").await;
    assert_eq!((reply.status, reply.body), (200, body));
}
