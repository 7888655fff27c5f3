//! Benchmark baseline: the `hello` app (`GET /` → `hello world\n`, same axum router, no
//! cluster) served by one process with `axum::serve`, on a tokio `current_thread` runtime or a
//! `multi_thread` one (`FLAVOR`). `HOST`, `PORT` (0 = any free port) as for `hello`; prints
//! `listening on http://ADDR`. `CONNECT_INFO=1` gives every request axum's
//! `ConnectInfo<SocketAddr>`, as the cluster's workers do.

use axum::Router;
use axum::routing::get;

fn main() -> std::io::Result<()> {
    let mut runtime = match std::env::var("FLAVOR").as_deref() {
        Ok("multi_thread") => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    runtime.enable_all().build()?.block_on(async {
        let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = Router::new().route("/", get(|| async { "hello world\n" }));
        match std::env::var("CONNECT_INFO").as_deref() {
            Ok("1") => {
                let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                axum::serve(listener, app).await
            }
            _ => axum::serve(listener, app).await,
        }
    })
}
