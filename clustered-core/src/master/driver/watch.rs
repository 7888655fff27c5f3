//! Watch mode (`CLUSTER_WATCH`): the master watches its own executable and any extra paths,
//! and asks for a rolling reload when they change, so that `cargo build` in another shell
//! updates a running server with no gap in service. The executable is usually replaced by a
//! rename (or a new hard link), so its directory is watched, not its inode; changes are
//! debounced (a build writes the file in several steps). A broken new binary aborts that
//! reload, and the old workers keep serving. With `notify` (inotify on Linux; its thread).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::EventKind;
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::master::control::ClusterControl;

/// Quiet time after the last change before the reload starts.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// The running watch; stops when dropped.
pub(crate) struct Watch {
    _watcher: RecommendedWatcher,
    reloader: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.reloader.abort();
    }
}

impl Watch {
    /// Watches `exe` (through its directory) and `extra` paths (directories recursively);
    /// an error names a path that cannot be watched.
    pub(crate) fn start(
        exe: &Path,
        extra: &[PathBuf],
        control: ClusterControl,
    ) -> Result<Watch, Error> {
        let (changes, changed) = mpsc::unbounded_channel();
        let dir = exe_dir(exe);
        let (watched_exe, extra_paths) = (exe.to_path_buf(), extra.to_vec());
        let matters = move |event: &Event| {
            !matches!(event.kind, EventKind::Access(_))
                && event.paths.iter().any(|path| {
                    path == &watched_exe || extra_paths.iter().any(|extra| path.starts_with(extra))
                })
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<Event>| match event {
                Ok(event) if matters(&event) => {
                    let _ = changes.send(event.paths);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "watch mode: watching failed"),
            })
            .map_err(|error| watch_error(dir.clone(), error))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|error| watch_error(dir.clone(), error))?;
        for path in extra {
            watcher
                .watch(path, RecursiveMode::Recursive)
                .map_err(|error| watch_error(path.clone(), error))?;
        }
        tracing::info!(executable = %exe.display(), extra = ?extra, "watch mode: a change reloads the workers");
        let reloader = tokio::spawn(reload_on_change(changed, control));
        Ok(Watch {
            _watcher: watcher,
            reloader,
        })
    }
}

/// The directory holding `exe` (the current one for a bare name).
fn exe_dir(exe: &Path) -> PathBuf {
    exe.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn watch_error(path: PathBuf, error: notify::Error) -> Error {
    Error::Watch {
        path,
        reason: error.to_string(),
    }
}

/// After each burst of changes, once quiet for [`DEBOUNCE`], asks for a reload (one asked
/// during a reload runs after it).
async fn reload_on_change(
    mut changed: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    control: ClusterControl,
) {
    while let Some(mut paths) = changed.recv().await {
        while let Ok(Some(more)) = tokio::time::timeout(DEBOUNCE, changed.recv()).await {
            paths = more;
        }
        let path = paths.first().map(|path| path.display().to_string());
        tracing::info!(
            changed = path.unwrap_or_default(),
            "watch mode: reloading the workers"
        );
        control.reload();
    }
}
