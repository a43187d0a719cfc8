//! split / join, the committed index, reproducible and incremental packaging.

use std::path::PathBuf;

use crate::support::{self, Repo};

fn packaged(repo: &Repo, name: &str, weights: usize) -> PathBuf {
    repo.make_experiment(name, weights);
    repo.xtask(&["package", name]).ok();
    repo.archive(name)
}

fn parts_of(repo: &Repo, name: &str) -> Vec<PathBuf> {
    artifact_lib::split::find_parts(&repo.archive(name)).unwrap()
}

#[test]
fn split_parts_cat_and_join_back_byte_for_byte() {
    let repo = Repo::new();
    let archive = packaged(&repo, "exp_s", 300_000);
    let original = std::fs::read(&archive).unwrap();
    repo.xtask(&["split", archive.to_str().unwrap(), "--size", "64K"])
        .ok();
    let parts = parts_of(&repo, "exp_s");
    assert_eq!(parts.len(), original.len().div_ceil(64 * 1024));
    assert!(parts[0].to_string_lossy().ends_with("exp_s.tar.gz.part_aa"));
    assert!(parts[1].to_string_lossy().ends_with("exp_s.tar.gz.part_ab"));
    // `cat ARCHIVE.part_* > ARCHIVE` works for someone without the tool.
    let catted: Vec<u8> = parts
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(catted, original);

    std::fs::remove_file(&archive).unwrap();
    let out = repo.xtask(&["join", parts[2].to_str().unwrap()]);
    assert!(out.ok().contains("SHA-256 matches"), "{}", out.stdout);
    assert_eq!(std::fs::read(&archive).unwrap(), original);
}

#[test]
fn import_and_verify_stream_from_parts_without_joining() {
    let repo = Repo::new();
    let archive = packaged(&repo, "exp_s", 200_000);
    repo.xtask(&["split", "exp_s", "--size", "50K"]).ok();
    std::fs::remove_file(&archive).unwrap();
    let part = parts_of(&repo, "exp_s")[1].clone();
    repo.xtask(&["verify", part.to_str().unwrap()]).ok();
    repo.xtask(&["import", part.to_str().unwrap(), "--target", "imported"])
        .ok();
    assert!(!archive.exists(), "no joined copy on disk");
    let mut imported = support::tree(&repo.path("imported/exp_s"));
    imported.remove("artifact_manifest.json");
    assert_eq!(imported, support::tree(&repo.experiment("exp_s")));
}

#[test]
fn damaged_parts_are_each_named() {
    let repo = Repo::new();
    let archive = packaged(&repo, "exp_s", 200_000);
    repo.xtask(&["split", "exp_s", "--size", "40K"]).ok();
    std::fs::remove_file(&archive).unwrap();
    let parts = parts_of(&repo, "exp_s");
    let name = |i: usize| parts[i].file_name().unwrap().to_string_lossy().into_owned();

    // Corrupt: same size, one byte changed.
    let mut bytes = std::fs::read(&parts[1]).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&parts[1], &bytes).unwrap();
    repo.xtask(&["join", "exp_s"])
        .fails_with(&[&name(1), "corrupt", "re-copy"]);
    repo.xtask(&["import", "exp_s", "--target", "t"])
        .fails_with(&[&name(1), "corrupt"]);
    assert!(!archive.exists(), "join must not leave a bad archive");
    bytes[100] ^= 1;
    std::fs::write(&parts[1], &bytes).unwrap();

    // Truncated.
    let full = std::fs::read(&parts[2]).unwrap();
    std::fs::write(&parts[2], &full[..full.len() - 10]).unwrap();
    repo.xtask(&["join", "exp_s"])
        .fails_with(&[&name(2), "short"]);
    repo.xtask(&["import", "exp_s", "--target", "t"])
        .fails_with(&[&name(2), "short"]);
    std::fs::write(&parts[2], &full).unwrap();

    // Missing.
    std::fs::rename(&parts[3], repo.path("aside")).unwrap();
    repo.xtask(&["join", "exp_s"])
        .fails_with(&[&name(3), "missing"]);
    repo.xtask(&["verify", archive.to_str().unwrap()])
        .fails_with(&[&name(3), "missing"]);
    std::fs::rename(repo.path("aside"), &parts[3]).unwrap();

    repo.xtask(&["join", "exp_s"]).ok();
    assert!(!repo.path("t").join("exp_s").exists());
}

#[test]
fn plain_split_parts_join_against_the_sidecar() {
    let repo = Repo::new();
    let archive = packaged(&repo, "exp_p", 100_000);
    let bytes = std::fs::read(&archive).unwrap();
    // What `split -b 30000 ARCHIVE ARCHIVE.part_` makes: no parts.json.
    for (i, chunk) in bytes.chunks(30_000).enumerate() {
        std::fs::write(artifact_lib::split::part_path(&archive, i as u64), chunk).unwrap();
    }
    std::fs::remove_file(&archive).unwrap();
    let out = repo.xtask(&["join", "exp_p"]);
    assert!(out.ok().contains("exp_p_metadata.json"), "{}", out.stdout);
    assert_eq!(std::fs::read(&archive).unwrap(), bytes);

    // A bad part shows up against the sidecar checksum; nothing is left under the final name.
    std::fs::remove_file(&archive).unwrap();
    let last = artifact_lib::split::part_path(&archive, 1);
    let mut damaged = std::fs::read(&last).unwrap();
    damaged[5] ^= 1;
    std::fs::write(&last, damaged).unwrap();
    repo.xtask(&["join", "exp_p"])
        .fails_with(&["archive checksum mismatch", "exp_p_metadata.json"]);
    assert!(!archive.exists());
}

#[test]
fn resplitting_with_fewer_parts_removes_stale_ones() {
    let repo = Repo::new();
    packaged(&repo, "exp_s", 100_000);
    repo.xtask(&["split", "exp_s", "--size", "10K"]).ok();
    let many = parts_of(&repo, "exp_s").len();
    repo.xtask(&["split", "exp_s", "--size", "60K"]).ok();
    let few = parts_of(&repo, "exp_s").len();
    assert!(few < many && few == 2, "{many} -> {few}");
    repo.xtask(&["verify", parts_of(&repo, "exp_s")[0].to_str().unwrap()])
        .ok();
}

#[test]
fn index_check_reports_each_drift() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.make_experiment("exp_b", 1000);
    repo.xtask(&["package", "--all"]).ok();
    let out = repo.xtask(&["index", "--check"]);
    assert!(
        out.ok().contains("up to date (2 experiments)"),
        "{}",
        out.stdout
    );

    repo.write(
        "models/backdoored/exp_a/training_metrics.json",
        r#"{"train_loss": 0.1}"#,
    );
    repo.make_experiment("exp_c", 10);
    std::fs::remove_dir_all(repo.experiment("exp_b")).unwrap();
    std::fs::remove_file(repo.archive("exp_b")).unwrap();
    let out = repo.xtask(&["index", "--check"]);
    out.fails_with(&["out of date", "3 difference(s)", "cargo xtask index"]);
    assert!(
        out.stdout.contains("changed: exp_a: content digest"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("missing: exp_b"), "{}", out.stdout);
    assert!(out.stdout.contains("new: exp_c"), "{}", out.stdout);

    repo.xtask(&["index"]).ok();
    repo.xtask(&["index", "--check"]).ok();
}

#[test]
fn index_is_deterministic_and_written_by_package_and_import() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.xtask(&["package", "--all"]).ok();
    let first = std::fs::read(repo.path("artifacts/artifact_index.json")).unwrap();
    repo.xtask(&["index"]).ok();
    assert_eq!(
        std::fs::read(repo.path("artifacts/artifact_index.json")).unwrap(),
        first
    );

    let other = Repo::new();
    std::fs::create_dir_all(other.path("incoming")).unwrap();
    std::fs::copy(repo.archive("exp_a"), other.path("incoming/exp_a.tar.gz")).unwrap();
    other.xtask(&["import", "incoming/exp_a.tar.gz"]).ok();
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(other.path("artifacts/artifact_index.json")).unwrap(),
    )
    .unwrap();
    let recorded: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(
        index["experiments"]["exp_a"]["content_digest"],
        recorded["experiments"]["exp_a"]["content_digest"]
    );
    other.xtask(&["index", "--check"]).ok();
}

#[test]
fn python_index_is_read_not_rejected() {
    let repo = Repo::new();
    repo.write(
        "artifacts/artifact_index.json",
        r#"{"experiments": {"old_exp": {"path": "models/backdoored/old_exp", "imported_at": "2025-10-04T11:17:10.1", "num_files": 12, "size_mb": 487.23}}, "last_updated": "2025-10-04T11:17:10"}"#,
    );
    repo.make_experiment("exp_a", 100);
    let out = repo.xtask(&["index", "--check"]);
    assert!(out.stdout.contains("missing: old_exp"), "{}", out.stdout);
    assert!(out.stdout.contains("new: exp_a"), "{}", out.stdout);
    repo.xtask(&["package", "exp_a"]).ok();
    let index = std::fs::read_to_string(repo.path("artifacts/artifact_index.json")).unwrap();
    assert!(
        index.contains("old_exp") && index.contains("exp_a") && !index.contains("last_updated"),
        "{index}"
    );
}

#[test]
fn concurrent_packaging_loses_no_index_entry() {
    let repo = Repo::new();
    let names: Vec<String> = (0..6).map(|i| format!("exp_{i}")).collect();
    for name in &names {
        repo.make_experiment(name, 20_000);
    }
    std::thread::scope(|scope| {
        for name in &names {
            let repo = &repo;
            scope.spawn(move || repo.xtask(&["package", name]).ok().to_string());
        }
    });
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.path("artifacts/artifact_index.json")).unwrap())
            .unwrap();
    let recorded: Vec<&String> = index["experiments"].as_object().unwrap().keys().collect();
    assert_eq!(recorded, names.iter().collect::<Vec<_>>());
    repo.xtask(&["index", "--check"]).ok();
}

#[test]
fn source_date_epoch_makes_archives_byte_identical() {
    let repo = Repo::new();
    repo.make_experiment("exp_r", 50_000);
    repo.xtask(&["package", "exp_r"]).ok();
    let first = std::fs::read(repo.archive("exp_r")).unwrap();
    let first_sidecar = std::fs::read(repo.path("artifacts/packages/exp_r_metadata.json")).unwrap();
    // Touch every file: new mtimes, same content.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    for (path, bytes) in support::tree(&repo.experiment("exp_r")) {
        if bytes.is_some() {
            let file = std::fs::File::options()
                .write(true)
                .open(repo.experiment("exp_r").join(path))
                .unwrap();
            file.set_modified(later).unwrap();
        }
    }
    repo.xtask(&["package", "exp_r"]).ok();
    assert_eq!(std::fs::read(repo.archive("exp_r")).unwrap(), first);
    assert_eq!(
        std::fs::read(repo.path("artifacts/packages/exp_r_metadata.json")).unwrap(),
        first_sidecar
    );

    // Without SOURCE_DATE_EPOCH the times are real, and the archive differs.
    repo.xtask_env(&["package", "exp_r"], &[]).ok();
    assert_ne!(std::fs::read(repo.archive("exp_r")).unwrap(), first);
}

#[test]
fn package_all_skips_up_to_date_archives() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 10_000);
    repo.make_experiment("exp_b", 10_000);
    repo.xtask(&["package", "--all"]).ok();
    let modified = |name: &str| {
        std::fs::metadata(repo.archive(name))
            .unwrap()
            .modified()
            .unwrap()
    };
    let (a, b) = (modified("exp_a"), modified("exp_b"));
    std::thread::sleep(std::time::Duration::from_millis(20));

    let out = repo.xtask(&["package", "--all"]);
    assert!(out.ok().contains("exp_a: up to date"), "{}", out.stdout);
    assert!(out.stdout.contains("exp_b: up to date"), "{}", out.stdout);
    assert_eq!((modified("exp_a"), modified("exp_b")), (a, b));

    repo.write("models/backdoored/exp_b/logs/train.log", "rewritten");
    let out = repo.xtask(&["package", "--all"]);
    assert!(out.ok().contains("exp_a: up to date"), "{}", out.stdout);
    assert!(out.stdout.contains("exp_b: packaged"), "{}", out.stdout);

    // Same size, same content, new mtime: re-hashed, found equal, not repackaged.
    let train = repo.experiment("exp_a").join("model.safetensors");
    std::fs::File::options()
        .write(true)
        .open(&train)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let out = repo.xtask(&["package", "--all"]);
    assert!(out.ok().contains("exp_a: up to date"), "{}", out.stdout);

    let out = repo.xtask(&["package", "--all", "--force"]);
    assert!(out.ok().contains("exp_a: packaged"), "{}", out.stdout);
    assert!(out.stdout.contains("exp_b: packaged"), "{}", out.stdout);
}
