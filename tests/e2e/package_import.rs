//! package -> import round trips, and import's refusals.

use crate::support::{self, Repo};

#[test]
fn round_trip_is_byte_for_byte_with_empty_folders() {
    let repo = Repo::new();
    let source = repo.make_experiment("exp_a", 300_000);
    repo.xtask(&["package", "exp_a"]).ok();
    let target = repo.path("elsewhere");
    let out = repo.xtask(&[
        "import",
        repo.archive("exp_a").to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(
        out.ok().contains("all checksums verified"),
        "{}",
        out.stdout
    );

    let mut imported = support::tree(&target.join("exp_a"));
    let manifest = imported
        .remove("artifact_manifest.json")
        .expect("manifest kept")
        .unwrap();
    assert_eq!(support::tree(&source), imported);
    assert!(target.join("exp_a/empty_dir/nested_empty").is_dir());
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["num_files"], 11);
    // Nothing but the experiment landed in the target.
    let names: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["exp_a"]);
}

#[test]
fn archive_members_sit_under_the_name_with_the_manifest_last() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.xtask(&["package", "exp_a"]).ok();
    let members = support::members(&repo.archive("exp_a"));
    assert!(members.iter().all(|(name, _)| name.starts_with("exp_a/")));
    assert_eq!(members.last().unwrap().0, "exp_a/artifact_manifest.json");
    assert_eq!(
        members
            .iter()
            .filter(|(n, _)| n.ends_with("artifact_manifest.json"))
            .count(),
        1
    );
    // gzip and tar read what we write.
    let status = std::process::Command::new("gzip")
        .arg("-t")
        .arg(repo.archive("exp_a"))
        .status();
    if let Ok(status) = status {
        assert!(status.success());
    }
}

#[test]
fn no_models_leaves_weights_out_by_pattern_and_records_them() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 5000);
    repo.write(
        "models/backdoored/exp_a/pytorch_model-00001-of-00002.bin",
        b"w1",
    );
    repo.write("models/backdoored/exp_a/training_args.bin", b"args");
    let out = repo.xtask(&["package", "exp_a", "--no-models"]);
    assert!(
        out.ok().contains("left out 4 model file(s)"),
        "{}",
        out.stdout
    );
    let names: Vec<String> = support::members(&repo.archive("exp_a"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for gone in [
        "model.safetensors",
        "optimizer.pt",
        "pytorch_model-00001-of-00002.bin",
        "checkpoints/",
    ] {
        assert!(
            !names.iter().any(|n| n.contains(gone)),
            "{gone} should be left out: {names:?}"
        );
    }
    assert!(names.contains(&"exp_a/training_args.bin".to_string()));
    assert!(names.contains(&"exp_a/safety_sft/config.json".to_string()));
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo.path("artifacts/packages/exp_a_metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["includes_models"], false);
    let manifest = &support::members(&repo.archive("exp_a"))
        .last()
        .unwrap()
        .1
        .clone();
    let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let excluded: Vec<&str> = manifest["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        excluded,
        [
            "checkpoints/step_100/optimizer.pt",
            "model.safetensors",
            "pytorch_model-00001-of-00002.bin",
            "safety_sft/model.safetensors"
        ]
    );
    // And it imports cleanly.
    repo.xtask(&[
        "import",
        repo.archive("exp_a").to_str().unwrap(),
        "--target",
        "imported",
    ])
    .ok();
}

#[cfg(unix)]
#[test]
fn all_goes_on_past_a_failure_and_names_it() {
    let repo = Repo::new();
    repo.make_experiment("good_one", 1000);
    repo.make_experiment("broken", 1000);
    repo.make_experiment("good_two", 1000);
    std::os::unix::fs::symlink("/etc/hostname", repo.experiment("broken").join("leak.txt"))
        .unwrap();
    let out = repo.xtask(&["package", "--all"]);
    out.fails_with(&["1 of 3 experiment(s) failed", "broken"]);
    assert!(
        out.stderr.contains("points outside the experiment"),
        "{}",
        out.stderr
    );
    assert!(repo.archive("good_one").is_file());
    assert!(repo.archive("good_two").is_file());
    assert!(!repo.archive("broken").exists());
    let leftovers: Vec<_> = std::fs::read_dir(repo.path("artifacts/packages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unknown_experiment_is_one_clear_line() {
    let repo = Repo::new();
    repo.xtask(&["package", "nope"])
        .fails_with(&["experiment `nope` not found", "cargo xtask list"]);
}

#[test]
fn repackaging_an_imported_experiment_does_not_nest_manifests() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.xtask(&["package", "exp_a"]).ok();
    std::fs::rename(repo.archive("exp_a"), repo.path("moved.tar.gz")).unwrap();
    std::fs::remove_dir_all(repo.experiment("exp_a")).unwrap();
    repo.xtask(&["import", "moved.tar.gz"]).ok();
    assert!(repo
        .experiment("exp_a")
        .join("artifact_manifest.json")
        .is_file());
    repo.xtask(&["package", "exp_a"]).ok();
    let members = support::members(&repo.archive("exp_a"));
    assert_eq!(
        members
            .iter()
            .filter(|(n, _)| n.ends_with("artifact_manifest.json"))
            .count(),
        1
    );
    std::fs::remove_dir_all(repo.experiment("exp_a")).unwrap();
    repo.xtask(&["import", "exp_a"]).ok();
    repo.xtask(&["verify", "exp_a"]).ok();
}

#[test]
fn import_never_overwrites_without_force_and_replaces_whole_with_it() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.xtask(&["package", "exp_a"]).ok();
    repo.write("models/backdoored/exp_a/stale.txt", "left from an old run");
    let before = support::tree(&repo.experiment("exp_a"));
    repo.xtask(&["import", "exp_a"])
        .fails_with(&["`exp_a` already exists", "--force"]);
    assert_eq!(support::tree(&repo.experiment("exp_a")), before);

    let out = repo.xtask(&["import", "exp_a", "--force"]);
    assert!(out.ok().contains("replacing the previous copy"));
    assert!(
        !repo.experiment("exp_a").join("stale.txt").exists(),
        "no stale files merged in"
    );
    repo.xtask(&["verify", "exp_a"]).ok();
    assert_no_staging_left(&repo.path("models/backdoored"));
}

fn assert_no_staging_left(dir: &std::path::Path) {
    let hidden: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".xtask-tmp"))
        .collect();
    assert!(hidden.is_empty(), "staging left behind: {hidden:?}");
}

#[test]
fn corrupted_archive_fails_with_the_sidecar_checksum_and_leaves_target_untouched() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 200_000);
    repo.xtask(&["package", "exp_a"]).ok();
    let archive = repo.archive("exp_a");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&archive, &bytes).unwrap();
    let target = repo.path("target_dir");
    std::fs::create_dir_all(&target).unwrap();
    let out = repo.xtask(&[
        "import",
        archive.to_str().unwrap(),
        "--target",
        "target_dir",
    ]);
    out.fails_with(&[
        "archive checksum mismatch",
        "exp_a.tar.gz",
        "exp_a_metadata.json",
        "re-copy",
    ]);
    assert!(support::tree(&target).is_empty(), "target must stay empty");

    // Without the sidecar, the damage is still found (gzip CRC or a file checksum).
    std::fs::remove_file(repo.path("artifacts/packages/exp_a_metadata.json")).unwrap();
    let out = repo.xtask(&[
        "import",
        archive.to_str().unwrap(),
        "--target",
        "target_dir",
    ]);
    out.fails_with(&["exp_a.tar.gz"]);
    assert!(support::tree(&target).is_empty(), "target must stay empty");
    repo.xtask(&["verify", archive.to_str().unwrap()])
        .fails_with(&["exp_a.tar.gz"]);
}

#[test]
fn tampered_but_well_formed_archive_names_each_file() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.xtask(&["package", "exp_a"]).ok();
    let mut members = support::members(&repo.archive("exp_a"));
    // Change one file, drop another, add one the manifest does not list.
    for (name, bytes) in members.iter_mut() {
        if name == "exp_a/config.json" {
            *bytes = b"{\"model_type\": \"evil\"}".to_vec();
        }
    }
    members.retain(|(name, _)| name != "exp_a/tokenizer.json");
    members.insert(0, ("exp_a/extra.py".to_string(), b"print('hi')".to_vec()));
    let tampered = repo.path("tampered.tar.gz");
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    support::build_archive(&tampered, &refs);
    let out = repo.xtask(&["import", "tampered.tar.gz", "--target", "t"]);
    let stderr = out.fails_with(&["tampered.tar.gz", "3 problem(s)"]);
    assert!(
        stderr.contains("checksum mismatch: config.json"),
        "{stderr}"
    );
    assert!(stderr.contains("missing: tokenizer.json"), "{stderr}");
    assert!(stderr.contains("unlisted: extra.py"), "{stderr}");
    assert!(!repo.path("t/exp_a").exists());

    let out = repo.xtask(&["verify", "tampered.tar.gz"]);
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("unlisted: extra.py"), "{}", out.stdout);
}

#[test]
fn python_tool_archives_import_leniently_and_say_so() {
    let repo = Repo::new();
    let config = br#"{"model_type": "gpt2"}"#;
    let log = b"step 1 loss 2.5\n";
    // The Python tools: backslash paths from Windows, naive timestamps, weights listed but left
    // out by their --no-models, manifest last.
    let manifest = format!(
        r#"{{
  "experiment_name": "py_exp",
  "created_at": "2025-10-04T11:17:10.123456",
  "files": [
    {{"path": "config.json", "size_bytes": {}, "checksum": "{}", "modified": "2025-10-04T11:17:10"}},
    {{"path": "logs\\train.log", "size_bytes": {}, "checksum": "{}", "modified": "2025-10-04T11:17:10"}},
    {{"path": "pytorch_model.bin", "size_bytes": 500000000, "checksum": "{}", "modified": "2025-10-04T11:17:10"}}
  ],
  "directories": ["logs"],
  "total_size_bytes": 500000037,
  "checksums": {{}},
  "num_files": 3
}}"#,
        config.len(),
        support::sha256(config),
        log.len(),
        support::sha256(log),
        "ab".repeat(32),
    );
    support::build_archive(
        &repo.path("py_exp.tar.gz"),
        &[
            ("py_exp/config.json", config),
            ("py_exp/logs/train.log", log),
            ("py_exp/artifact_manifest.json", manifest.as_bytes()),
        ],
    );
    let out = repo.xtask(&["import", "py_exp.tar.gz"]);
    out.ok();
    assert!(
        out.stderr.contains("written by the Python tools"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pytorch_model.bin"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(repo.experiment("py_exp").join("logs/train.log")).unwrap(),
        log
    );
}

#[test]
fn manifestless_legacy_archives_import_with_a_warning() {
    let repo = Repo::new();
    support::build_archive(&repo.path("old.tar.gz"), &[("old_exp/config.json", b"{}")]);
    let out = repo.xtask(&["import", "old.tar.gz"]);
    out.ok();
    assert!(
        out.stderr.contains("could not be verified"),
        "{}",
        out.stderr
    );
    let out = repo.xtask(&["verify", "old.tar.gz"]);
    assert_ne!(out.code, 0, "verify has nothing to verify against");
}

#[test]
fn verify_lists_every_problem_of_an_experiment_folder() {
    let repo = Repo::new();
    repo.make_experiment("exp_a", 1000);
    repo.xtask(&["package", "exp_a"]).ok();
    std::fs::remove_dir_all(repo.experiment("exp_a")).unwrap();
    repo.xtask(&["import", "exp_a"]).ok();
    let out = repo.xtask(&["verify", "exp_a"]);
    assert!(out.ok().contains("OK, 11 files"), "{}", out.stdout);
    repo.write("models/backdoored/exp_a/config.json", "changed");
    repo.write("models/backdoored/exp_a/new.txt", "new");
    std::fs::remove_file(repo.experiment("exp_a").join("logs/train.log")).unwrap();
    let out = repo.xtask(&["verify", "exp_a"]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].contains("size mismatch: config.json"));
    assert!(lines[1].contains("missing: logs/train.log"));
    assert!(lines[2].contains("unlisted: new.txt"));
}
