//! [`Region`]: one process's metrics memory, shared between it and the master: a sealed
//! `memfd` the master creates for each worker before starting it, mapped by both. Its size is
//! sealed, so the worker cannot shrink it under the master's mapping (which would make the
//! master's reads fault); what the worker writes in it the master reads without trusting.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use super::layout::{REGION_BYTES, REGION_WORDS};

/// A mapped metrics region of [`REGION_WORDS`] words, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Region {
    words: NonNull<AtomicU64>,
}

// SAFETY: the mapping is only ever accessed through atomics, from any thread.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// A new zeroed region and its descriptor (close-on-exec; a worker gets it mapped to a
    /// known number), its size sealed.
    pub(crate) fn create() -> std::io::Result<(Region, OwnedFd)> {
        let fd = rustix::fs::memfd_create(
            "cluster-metrics",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, REGION_BYTES as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        Ok((Region::map(fd.as_fd())?, fd))
    }

    /// Maps the region the master created, given by its descriptor (which may be closed
    /// afterwards); an error if the file is not a region's size.
    pub(crate) fn open(fd: impl AsFd) -> std::io::Result<Region> {
        let size = rustix::fs::fstat(&fd)?.st_size;
        if u64::try_from(size).ok() != Some(REGION_BYTES as u64) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the metrics region is {size} bytes, not {REGION_BYTES}"),
            ));
        }
        Region::map(fd.as_fd())
    }

    fn map(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Region> {
        // SAFETY: a new shared mapping of a file of at least REGION_BYTES (its size is sealed
        // or checked), at an address the kernel picks; no Rust reference to it exists yet.
        let address = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                REGION_BYTES,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let words = NonNull::new(address.cast::<AtomicU64>())
            .ok_or_else(|| std::io::Error::other("mmap returned a null address"))?;
        Ok(Region { words })
    }

    /// The region's words.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is REGION_BYTES long, page-aligned (so aligned for u64), lives as
        // long as `self`, and is only accessed through atomics (here and in the other process).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr(), REGION_WORDS) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, with its length; no reference to it outlives self.
        if let Err(error) = unsafe { rustix::mm::munmap(self.words.as_ptr().cast(), REGION_BYTES) }
        {
            tracing::debug!(%error, "munmap of a metrics region failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn both_mappings_see_the_same_words_and_the_size_is_sealed() {
        let (master, fd) = Region::create().unwrap();
        let worker = Region::open(&fd).unwrap();
        worker.words()[5].fetch_add(3, Ordering::Relaxed);
        assert_eq!(master.words()[5].load(Ordering::Relaxed), 3);
        assert!(
            rustix::fs::ftruncate(&fd, 8).is_err(),
            "a worker cannot shrink it"
        );
        drop(worker);
        assert_eq!(master.words()[5].load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_file_of_another_size_is_refused() {
        let fd = rustix::fs::memfd_create("not-a-region", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let error = Region::open(&fd).unwrap_err();
        assert!(error.to_string().contains("4096 bytes"), "{error}");
    }
}
