//! [`Exit`]: end a cluster program's `main` with a one-line error and a failure code.

use std::process::{ExitCode, Termination};

use crate::Error;

/// What a cluster program's `main` returns: exit code 0 on success; on error, `error: <what
/// went wrong>` on stderr and exit code 1.
///
/// ```no_run
/// use clustered_core::{Cluster, Exit};
///
/// #[tokio::main]
/// async fn main() -> Exit {
///     Cluster::new()
///         .run(|_worker| async { Ok::<_, clustered_core::Error>(()) })
///         .await
///         .into()
/// }
/// ```
#[derive(Debug)]
pub struct Exit(Result<(), Error>);

impl From<Result<(), Error>> for Exit {
    fn from(result: Result<(), Error>) -> Self {
        Exit(result)
    }
}

impl Termination for Exit {
    fn report(self) -> ExitCode {
        match self.0 {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    }
}
