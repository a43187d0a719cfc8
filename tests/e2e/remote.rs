//! push / pull / list --remote: against a folder (`file://`, no server) and against a real
//! S3-compatible server on loopback (Garage or moto, started by `.ci/run` or by these tests).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{self, Repo};

/// A remote the tests can reach, plus the environment that reaches it.
struct TestRemote {
    url: String,
    env: Vec<(String, String)>,
    _server: Option<ServerGuard>,
}

struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl TestRemote {
    fn folder(dir: &Path) -> TestRemote {
        TestRemote {
            url: format!("file://{}", dir.display()),
            env: Vec::new(),
            _server: None,
        }
    }

    /// An S3 bucket: the one `.ci/run` set up (`XTASK_TEST_S3_ENDPOINT`, with the bucket in
    /// `XTASK_TEST_S3_BUCKET` and credentials in the standard AWS variables), else a moto server
    /// started here. `None` (a skip) only outside CI, when neither is available.
    fn s3(prefix: &str) -> Option<TestRemote> {
        if let Ok(endpoint) = std::env::var("XTASK_TEST_S3_ENDPOINT") {
            let bucket = std::env::var("XTASK_TEST_S3_BUCKET").expect("XTASK_TEST_S3_BUCKET");
            let mut env = vec![("AWS_ENDPOINT_URL".to_string(), endpoint)];
            for key in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION",
            ] {
                env.push((key.to_string(), std::env::var(key).unwrap_or_default()));
            }
            return Some(TestRemote {
                url: format!("s3://{bucket}/{prefix}"),
                env,
                _server: None,
            });
        }
        let port = free_port();
        let server = Command::new("moto_server")
            .args(["-p", &port.to_string(), "-H", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(server) = server else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide an S3 server"
            );
            eprintln!("skipped: no S3 server (set XTASK_TEST_S3_ENDPOINT or install moto_server)");
            return None;
        };
        let guard = ServerGuard(server);
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for_port(port);
        let env = vec![
            ("AWS_ENDPOINT_URL".to_string(), endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
            ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
        ];
        boto(&env, "s3.create_bucket(Bucket='team')");
        Some(TestRemote {
            url: format!("s3://team/{prefix}"),
            env,
            _server: Some(guard),
        })
    }

    fn xtask(&self, repo: &Repo, args: &[&str]) -> support::Run {
        let mut envs: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        envs.push(("SOURCE_DATE_EPOCH", "1700000000"));
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--remote", &self.url]);
        repo.xtask_env(&all, &envs)
    }

    /// Replaces the remote object `name` with `bytes`, as a damaged upload would.
    fn overwrite(&self, name: &str, bytes: &[u8]) {
        if let Some(path) = self.url.strip_prefix("file://") {
            std::fs::write(Path::new(path).join(name), bytes).unwrap();
            return;
        }
        let (bucket, prefix) = self.url["s3://".len()..].split_once('/').unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        boto(
            &self.env,
            &format!(
                "s3.upload_file({:?}, {bucket:?}, {:?})",
                file.path().display().to_string(),
                format!("{prefix}/{name}")
            ),
        );
    }
}

fn boto(env: &[(String, String)], statement: &str) {
    let endpoint = &env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").unwrap().1;
    let script =
        format!("import boto3\ns3 = boto3.client('s3', endpoint_url={endpoint:?})\n{statement}\n");
    let status = Command::new("python3")
        .args(["-c", &script])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()
        .unwrap();
    assert!(status.success(), "boto3: {statement}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("server on port {port} did not start");
}

fn packaged(repo: &Repo, name: &str, weights: usize) -> PathBuf {
    repo.make_experiment(name, weights);
    repo.xtask(&["package", name]).ok();
    repo.archive(name)
}

/// The whole contract, run against any remote.
fn push_pull_contract(remote: &TestRemote) {
    // Large enough for parallel multipart uploads (over 16 MiB).
    let sender = Repo::new();
    let archive = packaged(&sender, "exp_r", 40 << 20);
    let original = std::fs::read(&archive).unwrap();
    let out = remote.xtask(&sender, &["push", "exp_r"]);
    assert!(out.ok().contains("2 object(s) sent"), "{}", out.stdout);

    // Pushing again sends nothing.
    let out = remote.xtask(&sender, &["push", "exp_r"]);
    assert!(out.ok().contains("0 object(s) sent"), "{}", out.stdout);
    assert!(out.stdout.contains("2 unchanged"), "{}", out.stdout);

    let out = remote.xtask(&sender, &["list"]);
    assert!(out.ok().contains("exp_r.tar.gz"), "{}", out.stdout);
    assert!(out.stdout.contains("with models"), "{}", out.stdout);

    // Pull on another machine, byte for byte, and import.
    let receiver = Repo::new();
    let out = remote.xtask(&receiver, &["pull", "exp_r", "--import"]);
    assert!(out.ok().contains("SHA-256 verified"), "{}", out.stdout);
    assert_eq!(std::fs::read(receiver.archive("exp_r")).unwrap(), original);
    let mut imported = support::tree(&receiver.experiment("exp_r"));
    imported.remove("artifact_manifest.json");
    assert_eq!(imported, support::tree(&sender.experiment("exp_r")));

    // An interrupted pull resumes from what it had.
    let resumer = Repo::new();
    let sha = support::sha256(&original);
    let partial = resumer.path(&format!(
        "artifacts/packages/exp_r.tar.gz.{}.download",
        &sha[..16]
    ));
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, &original[..original.len() / 3]).unwrap();
    let out = remote.xtask(&resumer, &["pull", "exp_r"]);
    assert!(out.ok().contains("resumed after"), "{}", out.stdout);
    assert_eq!(std::fs::read(resumer.archive("exp_r")).unwrap(), original);
    assert!(!partial.exists());

    // A partial download holding wrong bytes never reaches the final name.
    let damaged = Repo::new();
    let partial = damaged.path(&format!(
        "artifacts/packages/exp_r.tar.gz.{}.download",
        &sha[..16]
    ));
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, vec![0u8; original.len() / 2]).unwrap();
    remote
        .xtask(&damaged, &["pull", "exp_r"])
        .fails_with(&["exp_r.tar.gz", "does not match"]);
    assert!(!damaged.archive("exp_r").exists() && !partial.exists());
    remote.xtask(&damaged, &["pull", "exp_r"]).ok();
    assert_eq!(std::fs::read(damaged.archive("exp_r")).unwrap(), original);

    // A corrupted remote object is refused and leaves nothing behind.
    let mut corrupted = original.clone();
    corrupted[original.len() / 2] ^= 0xff;
    remote.overwrite("exp_r.tar.gz", &corrupted);
    let victim = Repo::new();
    remote
        .xtask(&victim, &["pull", "exp_r", "--import"])
        .fails_with(&["exp_r.tar.gz", "does not match"]);
    let left: Vec<_> = std::fs::read_dir(victim.path("artifacts/packages"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "nothing kept: {left:?}");
    assert!(!victim.experiment("exp_r").exists());

    // Push decides by the recorded checksums, so `--force` re-sends a damaged object; then pull
    // agrees again.
    let out = remote.xtask(&sender, &["push", "exp_r", "--force"]);
    assert!(out.ok().contains("2 object(s) sent"), "{}", out.stdout);
    remote.xtask(&victim, &["pull", "exp_r"]).ok();
    assert_eq!(std::fs::read(victim.archive("exp_r")).unwrap(), original);

    // Split archives travel as parts and import without being joined.
    sender.xtask(&["split", "exp_r", "--size", "8M"]).ok();
    std::fs::remove_file(sender.archive("exp_r")).unwrap();
    let out = remote.xtask(&sender, &["push", "exp_r"]);
    assert!(out.ok().contains("exp_r.tar.gz.part_aa"), "{}", out.stdout);
    let parted = Repo::new();
    let out = remote.xtask(&parted, &["pull", "exp_r", "--import"]);
    out.ok();
    assert!(parted
        .experiment("exp_r")
        .join("model.safetensors")
        .is_file());
}

#[test]
fn push_pull_through_a_folder_remote() {
    let bucket = tempfile::tempdir().unwrap();
    push_pull_contract(&TestRemote::folder(&bucket.path().join("team/experiments")));
}

#[test]
fn push_pull_through_s3() {
    let Some(remote) = TestRemote::s3("team-experiments") else {
        return;
    };
    push_pull_contract(&remote);
}

#[test]
fn a_missing_remote_or_experiment_is_one_clear_line() {
    let repo = Repo::new();
    repo.xtask(&["pull", "exp_x"])
        .fails_with(&["no remote", "--remote"]);
    repo.xtask(&["pull", "exp_x", "--remote", "ftp://host/x"])
        .fails_with(&["ftp", "not supported"]);
    let bucket = tempfile::tempdir().unwrap();
    let url = format!("file://{}", bucket.path().display());
    repo.xtask(&["pull", "exp_x", "--remote", &url])
        .fails_with(&["`exp_x` is not on the remote"]);
    repo.xtask(&["push", "exp_x", "--remote", &url])
        .fails_with(&["exp_x"]);
}

#[test]
fn the_default_remote_comes_from_workspace_metadata() {
    let repo = Repo::new();
    let bucket = tempfile::tempdir().unwrap();
    repo.write(
        "Cargo.toml",
        format!(
            "[workspace]\n\n[workspace.metadata.artifacts]\nremote = \"file://{}\"\n",
            bucket.path().display()
        ),
    );
    packaged(&repo, "exp_d", 1000);
    let out = repo.xtask(&["push", "exp_d"]);
    assert!(out.ok().contains("2 object(s) sent"), "{}", out.stdout);
    assert!(bucket.path().join("exp_d.tar.gz").is_file());
    let out = repo.xtask(&[
        "list",
        "--remote",
        &format!("file://{}", bucket.path().display()),
        "--json",
        "-",
    ]);
    let listing: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(listing["archives"][0]["experiment_name"], "exp_d");
    assert_eq!(listing["archives"][0]["includes_models"], true);
}
