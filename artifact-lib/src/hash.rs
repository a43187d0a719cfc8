//! SHA-256 plumbing: readers and writers that hash what passes through them, and the content
//! digest that identifies an experiment independently of timestamps and compression.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Whether `text` looks like a SHA-256 hex digest.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A reader that hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hex SHA-256 and byte count of everything read, and the inner reader.
    pub fn finish(self) -> (String, u64, R) {
        (hex(&self.hasher.finalize()), self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts every byte written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The hex SHA-256 and byte count of everything written, and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        (hex(&self.hasher.finalize()), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads at least 1 MiB at a time: large sequential reads are what disks and page caches like.
pub const IO_BUFFER: usize = 1 << 20;

/// The hex SHA-256 and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let file = File::open(path).at("opening", path)?;
    sha256_reader(file).at("reading", path)
}

/// The hex SHA-256 and length of everything `reader` yields.
pub fn sha256_reader(reader: impl Read) -> io::Result<(String, u64)> {
    let mut hashing = HashingReader::new(reader);
    let mut buf = vec![0u8; IO_BUFFER];
    while hashing.read(&mut buf)? != 0 {}
    let (sha, count, _) = hashing.finish();
    Ok((sha, count))
}

/// The content digest of a set of files: SHA-256 over `path NUL size NUL sha256 LF` for each file
/// in byte order of path. It changes exactly when a file's path, size or content changes.
pub fn content_digest<'a>(files: impl IntoIterator<Item = (&'a str, u64, &'a str)>) -> String {
    let mut files: Vec<_> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (path, size, sha) in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(size.to_string().as_bytes());
        hasher.update([0]);
        hasher.update(sha.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        let (sha, len) = sha256_reader(&b"abc"[..]).unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(len, 3);
    }

    #[test]
    fn content_digest_ignores_order_but_not_content() {
        let a = content_digest([("a", 1, "x"), ("b", 2, "y")]);
        let b = content_digest([("b", 2, "y"), ("a", 1, "x")]);
        let c = content_digest([("a", 1, "x"), ("b", 2, "z")]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
