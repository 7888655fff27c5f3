//! The agent's side of the builder: [`Cluster::agent`], and running it in slot 0.

use crate::env;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Cluster, Hook};
use crate::error::{BoxError, Error};
use crate::role::{AGENT_ID, WorkerEnv};
use crate::worker::Worker;

/// The agent's main function.
pub(super) type AgentMain =
    Arc<dyn Fn(Worker) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync>;

impl Cluster {
    /// Gives the cluster an **agent** (egg's master/agent/worker model): one process of this
    /// program, in slot [`crate::AGENT_ID`] (0), that serves no connections and runs `agent`
    /// — the work only one process should do: a scheduled job, a shared cache, a single
    /// upstream connection. The master starts it before the workers, which start once it has
    /// joined (and said [`Worker::ready`], with [`Cluster::wait_ready`]); it restarts the agent
    /// alone when it dies (the workers keep serving), and a reload replaces it first (the old
    /// one stops before the new one starts: there is never two). Workers ask it with
    /// [`crate::worker::agent::request`] and send to it with [`crate::worker::agent::send`]; it answers
    /// [`crate::worker::agent::requests`] and reaches the workers with [`crate::worker::ipc::broadcast`].
    /// `agent` runs until it returns (then the process stays until the master stops it) or the
    /// master stops the agent.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), clustered_core::Error> {
    /// clustered_core::Cluster::new()
    ///     .agent(|_agent| async {
    ///         // One process only: answer the workers' requests.
    ///         let mut requests = clustered_core::agent::requests()?;
    ///         while let Some(request) = requests.recv().await {
    ///             request.reply("pong")?;
    ///         }
    ///         Ok::<_, clustered_core::Error>(())
    ///     })
    ///     .run(|_worker| async { Ok::<_, clustered_core::Error>(()) })
    ///     .await
    /// # }
    /// ```
    pub fn agent<F, Fut, E>(mut self, agent: F) -> Self
    where
        F: Fn(Worker) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.hooks.agent = Some(Hook(Arc::new(move |worker| {
            let running = agent(worker);
            Box::pin(async move { running.await.map_err(Into::into) })
        })));
        self
    }

    /// Runs this process as the agent: joins the master, runs the agent's function until it
    /// returns (then waits to be stopped) or the master stops the agent.
    pub(super) async fn run_agent(&self, env: WorkerEnv) -> Result<(), Error> {
        let Some(Hook(agent)) = &self.hooks.agent else {
            return Err(Error::Env {
                var: env::WORKER_ID,
                value: AGENT_ID.to_string(),
                reason: "slot 0 is the agent, and this program has none (Cluster::agent)".into(),
            });
        };
        let worker = Worker::join(env).await?;
        let draining = worker.clone();
        tokio::select! {
            finished = agent(worker) => {
                finished.map_err(Error::Worker)?;
                draining.draining().await;
                Ok(())
            }
            () = draining.draining() => Ok(()),
        }
    }
}
