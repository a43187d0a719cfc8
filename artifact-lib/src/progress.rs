//! Progress reporting, decoupled from any terminal: the library reports bytes, the binary draws.

use std::io::{self, Read};

/// Receives progress of a long operation. All methods default to doing nothing.
pub trait Progress: Sync {
    /// A new phase begins: `label` names it, `total_bytes` is how much will pass.
    fn begin(&self, label: &str, total_bytes: u64) {
        let _ = (label, total_bytes);
    }
    /// `bytes` more bytes passed.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
    /// The phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// A reader that reports every byte read to a [`Progress`].
pub struct ProgressReader<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<'p, R> ProgressReader<'p, R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: &'p dyn Progress) -> Self {
        ProgressReader { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
