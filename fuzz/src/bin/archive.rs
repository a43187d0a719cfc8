//! Fuzz target: the manifest parser and the streaming archive reader.
//!
//! The first byte picks the layer: 0 parses the rest as a manifest; 1 gzips the rest and reads
//! it as a tar stream (so mutations reach the tar and member checks instead of dying on gzip's
//! CRC); anything else reads the rest as a .tar.gz as-is. Any panic is a finding.

use std::io::Write;
use std::path::Path;

use artifact_lib::archive::{read_archive, DiscardSink, Limits};
use artifact_lib::{Manifest, NoProgress};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        match mode {
            0 => {
                let _ = Manifest::parse(rest, Path::new("fuzz.json"));
            }
            1 => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(rest).unwrap();
                read(gz.finish().unwrap());
            }
            _ => read(rest.to_vec()),
        }
    });
}

fn read(bytes: Vec<u8>) {
    let limits = Limits {
        max_ratio: Some(100),
        ratio_grace_bytes: 16 << 20,
    };
    let _ = read_archive(
        Path::new("fuzz.tar.gz"),
        Box::new(std::io::Cursor::new(bytes)),
        &mut DiscardSink,
        limits,
        &NoProgress,
    );
}
