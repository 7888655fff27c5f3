//! Load generator for the master's handoff capacity: `THREADS` (default 2) threads open TCP
//! connections to `TARGET` (`HOST:PORT`) as fast as they can and close each at once (reset,
//! `SO_LINGER` 0, so neither side keeps it in `TIME_WAIT`), `CONNECTIONS` in all (default
//! 100000). No HTTP: the server's cost per connection is then mostly the accept, the handoff and
//! the close, and the generator's is a connect and a close.
//!
//! Prints `connections=N failed=F seconds=S per_second=R`.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let Some(target) = std::env::var("TARGET")
        .ok()
        .and_then(|target| target.parse::<SocketAddr>().ok())
    else {
        eprintln!("error: set TARGET=HOST:PORT");
        std::process::exit(2);
    };
    let threads = env_number("THREADS", 2).max(1);
    let total = env_number("CONNECTIONS", 100_000);
    let next = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    match TcpStream::connect(target) {
                        Ok(stream) => {
                            let _ = rustix::net::sockopt::set_socket_linger(
                                &stream,
                                Some(Duration::ZERO),
                            );
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "connections={total} failed={failed} seconds={seconds:.3} per_second={:.0}",
        total.saturating_sub(failed) as f64 / seconds
    );
}
