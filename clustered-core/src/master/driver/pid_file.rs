//! [`PidFile`]: the master's pid in a file (`CLUSTER_PID_FILE`, [`crate::Cluster::pid_file`]),
//! for scripts and init systems that send it signals (`kill -USR2 $(cat app.pid)`). Written
//! whole (a temporary file renamed over it) when the master starts, and by an upgrade's new
//! master once it has taken over; removed when the master exits, unless it holds another
//! pid by then (the new master's, after an upgrade).

use std::io;
use std::path::{Path, PathBuf};

/// The pid file this master wrote.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's pid to `path`.
    pub(crate) fn write(path: &Path) -> io::Result<Self> {
        let pid = std::process::id();
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{pid}.tmp"));
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, format!("{pid}\n"))?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })?;
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PidFile;

    #[test]
    fn the_file_holds_the_pid_and_goes_with_the_master_unless_another_took_it() {
        let dir = std::env::temp_dir().join(format!("pid-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.pid");
        let written = PidFile::write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(written);
        assert!(!path.exists(), "removed on exit");

        let written = PidFile::write(&path).unwrap();
        std::fs::write(&path, "4242\n").unwrap();
        drop(written);
        assert!(path.exists(), "another master's is left alone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
