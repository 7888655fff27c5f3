//! `clusterctl fleet`: the masters of a fleet, from the heartbeats they keep in its Redis.

use std::process::ExitCode;

use clustered_redis::{Fleet, FleetConfig};
use comfy_table::{ContentArrangement, Table, presets};

/// Lists the masters of `namespace` on the Redis at `url`; exit 2 when Redis cannot be read.
pub(crate) fn list(url: &str, namespace: &str, json: bool) -> ExitCode {
    let fail = |error: &dyn std::fmt::Display| {
        match json {
            true => println!(
                "{}",
                serde_json::json!({"ok": false, "error": error.to_string()})
            ),
            false => eprintln!("error: {error}"),
        }
        ExitCode::from(2)
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error),
    };
    let masters = runtime.block_on(async {
        let config = FleetConfig::new(url)?.with_namespace(namespace)?;
        let fleet = Fleet::connect(&config).await?;
        let masters = fleet.list_masters().await;
        fleet.shutdown().await;
        masters
    });
    let masters = match masters {
        Ok(masters) => masters,
        Err(error) => return fail(&error),
    };
    if json {
        println!("{}", serde_json::json!({"ok": true, "masters": masters}));
        return ExitCode::SUCCESS;
    }
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(["host", "pid", "port", "workers", "uptime", "agent", "id"]);
    for master in &masters {
        let port = master
            .port
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        table.add_row([
            master.host.clone(),
            master.pid.to_string(),
            port,
            master.workers.to_string(),
            format!("{}s", master.uptime_secs),
            if master.agent { "yes" } else { "" }.to_owned(),
            master.id.clone(),
        ]);
    }
    println!("{table}");
    ExitCode::SUCCESS
}
