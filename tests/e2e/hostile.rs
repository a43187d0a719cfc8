//! Hostile and damaged input: every case is refused with one clear line naming the entry, a
//! non-zero exit, and a target left exactly as it was. The corpus is built here, byte by byte,
//! so nothing opaque is checked in.

use std::io::Write;
use std::path::Path;

use crate::support::{self, Repo};

/// One raw tar member: a ustar header written by hand (no library refuses our names), then data.
fn raw_member(name: &[u8], kind: u8, mode: u32, data: &[u8], link: &[u8]) -> Vec<u8> {
    raw_member_sized(name, kind, mode, data, data.len() as u64, link)
}

fn raw_member_sized(
    name: &[u8],
    kind: u8,
    mode: u32,
    data: &[u8],
    size: u64,
    link: &[u8],
) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name);
    header[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    if size < 8u64.pow(11) {
        header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256 for sizes octal cannot hold.
        header[124] = 0x80;
        header[128..136].copy_from_slice(&size.to_be_bytes());
    }
    header[136..148].copy_from_slice(b"14533000000\0");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link);
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    raw_member(name.as_bytes(), b'0', 0o644, data, b"")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn tar_gz(members: &[Vec<u8>]) -> Vec<u8> {
    let mut tar: Vec<u8> = members.concat();
    tar.extend_from_slice(&[0u8; 1024]);
    gzip(&tar)
}

/// Imports `archive_bytes` into a target that already holds one experiment, and checks the
/// refusal: exit status, one error line naming `needle`, and an untouched target.
#[track_caller]
fn refused(archive_bytes: &[u8], needles: &[&str]) -> String {
    let repo = Repo::new();
    repo.write("models/backdoored/existing/config.json", "{}");
    let before = support::tree(&repo.path("models"));
    std::fs::write(repo.path("hostile.tar.gz"), archive_bytes).unwrap();
    let out = repo.xtask(&["import", "hostile.tar.gz"]);
    let stderr = out.fails_with(needles).to_string();
    assert_eq!(stderr.lines().count(), 1, "one line, got:\n{stderr}");
    assert_eq!(
        support::tree(&repo.path("models")),
        before,
        "target changed"
    );
    assert!(!repo.path("evil").exists() && !repo.path("etc").exists());
    // verify refuses it the same way, writing nothing.
    let verify = repo.xtask(&["verify", "hostile.tar.gz"]);
    assert_ne!(verify.code, 0, "verify accepted it:\n{}", verify.stdout);
    stderr
}

#[test]
fn path_traversal_and_unportable_names_are_refused() {
    let ok = file("exp/config.json", b"{}");
    for (name, why) in [
        ("exp/../evil.txt", "`..`"),
        ("/etc/evil.txt", "absolute"),
        ("C:/evil.txt", "colon"),
        ("exp/C:evil.txt", "colon"),
        ("exp/..\\..\\evil.txt", "backslash"),
        ("\\\\server\\share\\evil.txt", "backslash"),
        ("exp//evil.txt", "empty path component"),
        ("exp/./evil.txt", "`.`"),
        ("exp/evil\u{1}.txt", "control character"),
    ] {
        let stderr = refused(
            &tar_gz(&[ok.clone(), file(name, b"x")]),
            &["hostile.tar.gz", "refusing"],
        );
        assert!(stderr.contains(why), "{name}: {stderr}");
    }
}

#[test]
fn links_devices_fifos_and_unknown_types_are_refused() {
    let ok = file("exp/config.json", b"{}");
    for (kind, link, why) in [
        (b'2', &b"/etc/passwd"[..], "symbolic link"),
        (b'2', &b"config.json"[..], "symbolic link"),
        (b'1', &b"exp/config.json"[..], "hard link"),
        (b'3', &b""[..], "device"),
        (b'4', &b""[..], "device"),
        (b'6', &b""[..], "FIFO"),
        (b'Z', &b""[..], "unsupported entry type"),
    ] {
        let member = raw_member(b"exp/odd", kind, 0o644, b"", link);
        let stderr = refused(&tar_gz(&[ok.clone(), member]), &["exp/odd"]);
        assert!(stderr.contains(why), "{}: {stderr}", kind as char);
    }
}

#[test]
fn a_second_top_level_folder_is_refused() {
    let stderr = refused(
        &tar_gz(&[
            file("exp/config.json", b"{}"),
            file("existing/config.json", b"evil"),
        ]),
        &[
            "existing/config.json",
            "outside the experiment folder `exp`",
        ],
    );
    assert!(stderr.contains("exactly one top-level folder"));
    refused(
        &tar_gz(&[file("loose_file.txt", b"x")]),
        &["loose_file.txt", "not a folder"],
    );
}

#[test]
fn duplicates_and_case_collisions_are_refused() {
    refused(
        &tar_gz(&[file("exp/a.txt", b"1"), file("exp/a.txt", b"2")]),
        &["exp/a.txt", "appears twice"],
    );
    refused(
        &tar_gz(&[file("exp/Model.bin", b"1"), file("exp/model.bin", b"2")]),
        &["exp/model.bin", "only by case"],
    );
}

#[test]
fn damaged_streams_are_refused() {
    let good = tar_gz(&[
        file("exp/config.json", b"{}"),
        file("exp/log.txt", &[b'x'; 5000]),
    ]);
    // Not gzip at all; empty; truncated; garbage appended.
    refused(
        b"this is not an archive at all, just text",
        &["hostile.tar.gz", "not a .tar.gz"],
    );
    refused(b"", &["hostile.tar.gz"]);
    refused(&good[..good.len() / 2], &["hostile.tar.gz", "damaged"]);
    let mut appended = good.clone();
    appended.extend_from_slice(b"GARBAGE");
    refused(
        &appended,
        &[
            "hostile.tar.gz",
            "unexpected data after the end of the gzip stream",
        ],
    );
    // Well-formed gzip around a tar header whose checksum is wrong.
    let mut tar = [file("exp/config.json", b"{}"), file("exp/b.txt", b"b")].concat();
    tar[512 + 512 + 10] ^= 0x20;
    tar.extend_from_slice(&[0u8; 1024]);
    refused(&gzip(&tar), &["hostile.tar.gz", "damaged tar data"]);
    // Non-zero bytes after the end-of-archive blocks.
    let mut tail = [file("exp/config.json", b"{}")].concat();
    tail.extend_from_slice(&[0u8; 1024]);
    tail.extend_from_slice(&[7u8; 512]);
    refused(
        &gzip(&tail),
        &["hostile.tar.gz", "after the end of the tar archive"],
    );
}

#[test]
fn a_member_larger_than_the_free_space_is_refused_before_writing() {
    // The header claims 64 TiB; the data never comes. Refused before a byte is written.
    let claim = raw_member_sized(b"exp/huge.bin", b'0', 0o644, b"", 64 << 40, b"");
    let stderr = refused(
        &gzip(&[file("exp/config.json", b"{}"), claim].concat()),
        &["exp/huge.bin", "free space"],
    );
    assert!(stderr.contains("--target"), "{stderr}");
}

#[test]
fn modes_from_the_archive_are_not_trusted() {
    let repo = Repo::new();
    let members = [
        raw_member(b"exp/setuid", b'0', 0o4755, b"#!/bin/sh\n", b""),
        raw_member(b"exp/world", b'0', 0o666, b"w", b""),
        raw_member(b"exp/setgid_dir/", b'5', 0o2777, b"", b""),
        file("exp/setgid_dir/x", b"x"),
    ];
    std::fs::write(repo.path("modes.tar.gz"), tar_gz(&members)).unwrap();
    repo.xtask(&["import", "modes.tar.gz"]).ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(repo.experiment("exp").join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("setuid") & 0o7000, 0, "no setuid");
        assert_eq!(mode("setuid") & 0o002, 0);
        assert_eq!(mode("world") & 0o022, 0, "not group or world writable");
        assert_eq!(
            mode("setgid_dir") & 0o7022,
            0,
            "no setgid, not world writable"
        );
    }
}

#[test]
fn bomb_guard_refuses_absurd_expansion_unless_lifted() {
    // 1.2 GiB of zeros compresses about 1000:1 — nothing in an experiment does that.
    let size: u64 = 1_200 << 20;
    let mut tar = Vec::new();
    let mut header = raw_member_sized(b"exp/zeros.bin", b'0', 0o644, b"", size, b"");
    header.truncate(512);
    tar.extend_from_slice(&header);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    gz.write_all(&tar).unwrap();
    let zeros = vec![0u8; 8 << 20];
    for _ in 0..size / zeros.len() as u64 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let bytes = gz.finish().unwrap();
    let stderr = refused(
        &bytes,
        &["hostile.tar.gz", "decompression bomb", "--no-ratio-limit"],
    );
    assert!(stderr.contains("100 times"), "{stderr}");

    let repo = Repo::new();
    std::fs::write(repo.path("zeros.tar.gz"), &bytes).unwrap();
    let out = repo.xtask(&["verify", "zeros.tar.gz", "--no-ratio-limit"]);
    // Lifted: it reads to the end (and then reports that there is no manifest to check).
    assert!(
        out.stdout.contains("no artifact_manifest.json"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".xtask-tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn symlinks_inside_are_followed_and_outside_refused() {
    let repo = Repo::new();
    repo.make_experiment("exp_l", 1000);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            "config.json",
            repo.experiment("exp_l").join("config_link.json"),
        )
        .unwrap();
        repo.xtask(&["package", "exp_l"]).ok();
        let members = support::members(&repo.archive("exp_l"));
        let link = members
            .iter()
            .find(|(n, _)| n == "exp_l/config_link.json")
            .expect("link stored as a file");
        assert_eq!(
            link.1,
            std::fs::read(repo.experiment("exp_l").join("config.json")).unwrap()
        );

        std::os::unix::fs::symlink("logs", repo.experiment("exp_l").join("logs_link")).unwrap();
        repo.xtask(&["package", "exp_l"])
            .fails_with(&["logs_link", "symbolic link to a folder"]);
        std::fs::remove_file(repo.experiment("exp_l").join("logs_link")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", repo.experiment("exp_l").join("out")).unwrap();
        repo.xtask(&["package", "exp_l"])
            .fails_with(&["out", "points outside the experiment"]);
    }
    assert!(leftovers(&repo.path("artifacts/packages")).is_empty());
}

#[cfg(unix)]
#[test]
fn a_file_size_limit_kill_leaves_no_archive_and_the_next_run_cleans_up() {
    let repo = Repo::new();
    repo.make_experiment("exp_k", 3 << 20);
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let status = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -f 512; exec '{xtask}' --root '{}' package exp_k",
                repo.root().display()
            ),
        ])
        .status()
        .unwrap();
    assert!(!status.success());
    assert!(
        !repo.archive("exp_k").exists(),
        "no archive under its final name"
    );
    assert!(!repo.path("artifacts/packages/exp_k_metadata.json").exists());
    let left = leftovers(&repo.path("artifacts/packages"));
    assert_eq!(
        left.len(),
        1,
        "the killed run's temporary file is clearly named: {left:?}"
    );
    assert!(left[0].contains("exp_k.tar.gz"), "{left:?}");
    // The next run removes it (its process is gone) and succeeds.
    repo.xtask(&["package", "exp_k"]).ok();
    assert!(leftovers(&repo.path("artifacts/packages")).is_empty());
    repo.xtask(&["verify", repo.archive("exp_k").to_str().unwrap()])
        .ok();
}

#[cfg(unix)]
#[test]
fn sigkill_at_any_moment_never_leaves_a_partial_archive() {
    let repo = Repo::new();
    repo.make_experiment("exp_k", 24 << 20);
    let xtask = env!("CARGO_BIN_EXE_xtask");
    for delay_ms in [5u64, 30, 80, 150, 300] {
        let _ = std::fs::remove_file(repo.archive("exp_k"));
        let mut child = std::process::Command::new(xtask)
            .arg("--root")
            .arg(repo.root())
            .args(["package", "exp_k"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        if repo.archive("exp_k").exists() {
            // It finished before the kill: then it must be whole.
            repo.xtask(&["verify", repo.archive("exp_k").to_str().unwrap()])
                .ok();
        }
    }
}

/// Mounts a small tmpfs (root only); `None` where that is not possible outside CI.
#[cfg(target_os = "linux")]
fn small_tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount tmpfs"
        );
        eprintln!("skipped: cannot mount tmpfs here (needs root)");
        return None;
    }
    Some(Mounted(dir.to_path_buf()))
}

#[cfg(target_os = "linux")]
struct Mounted(std::path::PathBuf);

#[cfg(target_os = "linux")]
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn import_into_a_full_filesystem_fails_cleanly() {
    let repo = Repo::new();
    // Each file fits on its own, all of them do not: the disk fills part-way through.
    let base = "models/backdoored/exp_f";
    for i in 0..6 {
        repo.write(
            &format!("{base}/shard_{i}.bin"),
            support::pseudo_random(300 << 10, i),
        );
    }
    repo.xtask(&["package", "exp_f"]).ok();
    let target = repo.path("small");
    let Some(_mounted) = small_tmpfs(&target, "1m") else {
        return;
    };
    repo.write("small/existing/config.json", "{}");
    let before = support::tree(&target);
    let out = repo.xtask(&["import", "exp_f", "--target", target.to_str().unwrap()]);
    out.fails_with(&["small"]);
    assert!(
        out.stderr.contains("No space left") || out.stderr.contains("free space"),
        "{}",
        out.stderr
    );
    assert_eq!(support::tree(&target), before, "target untouched");

    // One file larger than the whole filesystem: refused before writing it.
    repo.write(
        "models/backdoored/exp_g/weights.bin",
        support::pseudo_random(2 << 20, 7),
    );
    repo.xtask(&["package", "exp_g"]).ok();
    let out = repo.xtask(&["import", "exp_g", "--target", target.to_str().unwrap()]);
    out.fails_with(&["exp_g/weights.bin", "free space"]);
    assert_eq!(support::tree(&target), before, "target untouched");
}
