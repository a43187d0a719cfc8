//! One struct per command, each with a `run` method that calls the library and prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use artifact_lib::package::PackageOutcome;
use artifact_lib::{index, list, manifest, split, Error, Layout, Result};
use clap::{Args, Subcommand};

use crate::progress::Bar;

/// What every command works from.
pub struct Context {
    pub layout: Layout,
    pub progress: Bar,
}

impl Context {
    pub fn new(root: PathBuf, quiet: bool) -> Result<Context> {
        Ok(Context {
            layout: Layout::discover(&root)?,
            progress: Bar::new(!quiet),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Package experiments into verified .tar.gz archives with sidecars.
    Package(Package),
    /// Import an archive (or split parts) into the experiments folder, verified.
    Import(Import),
    /// List experiments with their metrics.
    List(List),
    /// Verify an archive or an experiment folder against its manifest.
    Verify(Verify),
    /// Split an archive into parts with a parts.json listing.
    Split(Split),
    /// Join the parts of a split archive, verified.
    Join(Join),
    /// Rewrite the artifact index from what is present, or check it (--check).
    Index(IndexCmd),
    /// Upload an archive (or its parts), its sidecar and parts.json to an object store.
    Push(Push),
    /// Download an archive from an object store, verified, optionally importing it.
    Pull(Pull),
    /// Benchmark against tar, gzip, pigz and sha256sum on a synthetic experiment.
    Bench(crate::bench::Bench),
}

impl Command {
    pub fn run(&self, cx: &Context) -> Result<ExitCode> {
        match self {
            Command::Package(cmd) => cmd.run(cx),
            Command::Import(cmd) => cmd.run(cx),
            Command::List(cmd) => cmd.run(cx),
            Command::Verify(cmd) => cmd.run(cx),
            Command::Split(cmd) => cmd.run(cx),
            Command::Join(cmd) => cmd.run(cx),
            Command::Index(cmd) => cmd.run(cx),
            Command::Push(cmd) => cmd.run(cx),
            Command::Pull(cmd) => cmd.run(cx),
            Command::Bench(cmd) => cmd.run(cx),
        }
    }
}

/// A size for people: `512 B`, `4.0 KiB`, `1.5 GiB`.
fn mb(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[derive(Debug, Args)]
pub struct Package {
    /// Experiment names (folders of the experiments folder) or paths to experiment folders.
    #[arg(value_name = "NAME", required_unless_present = "all")]
    names: Vec<String>,
    /// Package every experiment; experiments whose archive is up to date are skipped.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// Leave out model weights (see model_patterns in the README).
    #[arg(long)]
    no_models: bool,
    /// Where archives go (default: artifacts/packages).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Repackage even when the archive is up to date.
    #[arg(long)]
    force: bool,
}

impl Package {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let layout = &cx.layout;
        let dirs: Vec<(String, Result<PathBuf>)> = if self.all {
            layout
                .experiment_dirs()?
                .into_iter()
                .map(|dir| (file_name(&dir), Ok(dir)))
                .collect()
        } else {
            self.names
                .iter()
                .map(|name| (name.clone(), layout.resolve_experiment(name)))
                .collect()
        };
        if dirs.is_empty() {
            println!(
                "no experiments in {}",
                layout.display_path(&layout.experiments_dir)
            );
            return Ok(ExitCode::SUCCESS);
        }
        let options = artifact_lib::PackageOptions {
            output_dir: self
                .output
                .clone()
                .unwrap_or_else(|| layout.packages_dir.clone()),
            no_models: self.no_models,
            model_filter: layout.model_filter.clone(),
            source_date_epoch: artifact_lib::package::source_date_epoch_from_env()
                .or(layout.source_date_epoch),
            progress: &cx.progress,
        };
        // Explicit names are always packaged; `--all` skips what is up to date.
        let force = self.force || !self.all;
        let total = dirs.len();
        let mut failures = Vec::new();
        for (name, dir) in dirs {
            let failed_before = failures.len();
            let outcome = dir
                .and_then(|dir| artifact_lib::package::package_if_changed(&dir, &options, force));
            match outcome {
                Ok(PackageOutcome::UpToDate { archive_path }) => {
                    println!(
                        "{name}: up to date ({})",
                        layout.display_path(&archive_path)
                    );
                }
                Ok(PackageOutcome::Packaged(report)) => {
                    let recorded = index::record_package(layout, &report);
                    println!(
                        "{name}: packaged {} files ({}) -> {} ({}, sha256 {})",
                        report.manifest.num_files,
                        mb(report.manifest.total_size_bytes),
                        layout.display_path(&report.archive_path),
                        mb(report.sidecar.archive_size_bytes.unwrap_or(0)),
                        report.sidecar.checksum,
                    );
                    if !report.manifest.excluded.is_empty() {
                        let left: u64 = report.manifest.excluded.iter().map(|e| e.size_bytes).sum();
                        println!(
                            "{name}: left out {} model file(s) ({})",
                            report.manifest.excluded.len(),
                            mb(left)
                        );
                    }
                    if let Err(err) = recorded {
                        failures.push((name, err));
                    }
                }
                Err(err) => failures.push((name, err)),
            }
            if total > 1 && failures.len() > failed_before {
                let (name, err) = &failures[failed_before];
                eprintln!("error: {name}: {err}");
            }
        }
        match failures.len() {
            0 => Ok(ExitCode::SUCCESS),
            // One experiment asked for, one error: say it plainly.
            1 if total == 1 => Err(failures.remove(0).1),
            _ => Err(Error::Batch { total, failures }),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An archive argument: a path, or the name of an archive in the packages folder. Something
/// that resolves to nothing comes back as `PACKAGES/NAME.tar.gz` when it looks like a bare
/// experiment name, so errors name the file the user most likely meant.
fn resolve_archive(layout: &Layout, given: &Path) -> PathBuf {
    if given.exists() || split::part_base(given).is_some() {
        return given.to_path_buf();
    }
    let in_packages = layout.packages_dir.join(given);
    if in_packages.exists()
        || !split::find_parts(&in_packages)
            .unwrap_or_default()
            .is_empty()
    {
        return in_packages;
    }
    let named = layout
        .packages_dir
        .join(format!("{}.tar.gz", given.display()));
    let bare_name = given.components().count() == 1 && given.extension().is_none();
    if named.exists() || !split::find_parts(&named).unwrap_or_default().is_empty() || bare_name {
        return named;
    }
    given.to_path_buf()
}

#[derive(Debug, Args)]
pub struct Import {
    /// The archive: a .tar.gz, any part of a split archive, or a name in the packages folder.
    archive: PathBuf,
    /// The experiments folder to import into (default: models/backdoored).
    #[arg(long, value_name = "DIR")]
    target: Option<PathBuf>,
    /// Skip checksum validation (structural safety checks still run).
    #[arg(long)]
    no_validate: bool,
    /// Replace an existing experiment of the same name, whole.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The decompression-bomb guard's switch.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Accept archives that expand more than 100x (a decompression-bomb guard that real
    /// weights and logs never trip).
    #[arg(long)]
    no_ratio_limit: bool,
}

impl LimitArgs {
    fn limits(&self) -> artifact_lib::Limits {
        let mut limits = artifact_lib::Limits::default();
        if self.no_ratio_limit {
            limits.max_ratio = None;
        }
        limits
    }
}

impl Import {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let layout = &cx.layout;
        let archive = resolve_archive(layout, &self.archive);
        let options = artifact_lib::ImportOptions {
            target_dir: self
                .target
                .clone()
                .unwrap_or_else(|| layout.experiments_dir.clone()),
            validate: !self.no_validate,
            force: self.force,
            limits: self.limits.limits(),
            progress: &cx.progress,
        };
        let report = artifact_lib::import_experiment(&archive, &options)?;
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
        index::record_import(layout, &report)?;
        println!(
            "{}: imported {} files ({}) into {}{}{}",
            report.name,
            report.num_files,
            mb(report.total_bytes),
            layout.display_path(&report.experiment_dir),
            if report.replaced {
                ", replacing the previous copy"
            } else {
                ""
            },
            if self.no_validate {
                " (not validated)"
            } else {
                ", all checksums verified"
            },
        );
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, Args)]
pub struct List {
    /// Also write the listing as JSON for the dashboard (`-` for stdout instead of the text).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// List what an object store holds instead (from its sidecars).
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

/// The remote to use: `--remote`, else `remote` in `[workspace.metadata.artifacts]`.
fn remote_url(cx: &Context, given: &Option<String>) -> Result<String> {
    given.clone().or_else(|| cx.layout.remote.clone()).ok_or_else(|| {
        Error::Invalid(
            "no remote: pass --remote URL (s3://bucket/prefix, gs://, az://, file:///path) or set `remote` in [workspace.metadata.artifacts]".into(),
        )
    })
}

impl List {
    fn run_remote(&self, url: &str) -> Result<ExitCode> {
        let remote = artifact_lib::remote::Remote::open(url)?;
        let entries = remote.list()?;
        let document = serde_json::json!({ "remote": remote.url(), "archives": entries });
        let mut json = serde_json::to_vec_pretty(&document).expect("listing serialises");
        json.push(b'\n');
        match &self.json {
            Some(path) if path.as_os_str() == "-" => {
                return write_stdout(&json).map(|()| ExitCode::SUCCESS)
            }
            Some(path) => artifact_lib::fsutil::write_atomically(path, &json)?,
            None => {}
        }
        let mut text = format!("{}: {} archive(s)\n", remote.url(), entries.len());
        for e in &entries {
            text.push_str(&format!(
                "  {:<48} {:>10}  {}{}  {}  sha256 {}\n",
                e.archive,
                mb(e.size_bytes),
                if e.includes_models {
                    "with models"
                } else {
                    "no models  "
                },
                if e.split { ", split" } else { "" },
                e.created_at,
                &e.sha256[..e.sha256.len().min(16)],
            ));
        }
        write_stdout(text.as_bytes())?;
        Ok(ExitCode::SUCCESS)
    }

    fn run(&self, cx: &Context) -> Result<ExitCode> {
        if self.remote.is_some() {
            let url = remote_url(cx, &self.remote)?;
            return self.run_remote(&url);
        }
        let experiments = artifact_lib::list_experiments(&cx.layout)?;
        let generated_at = manifest::rfc3339(std::time::SystemTime::now());
        match &self.json {
            Some(path) if path.as_os_str() == "-" => {
                write_stdout(&list::render_json(&experiments, &generated_at))?;
            }
            Some(path) => {
                artifact_lib::fsutil::write_atomically(
                    path,
                    &list::render_json(&experiments, &generated_at),
                )?;
                write_stdout(list::render_text(&experiments).as_bytes())?;
            }
            None => write_stdout(list::render_text(&experiments).as_bytes())?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("writing", "standard output", err))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Args)]
pub struct Verify {
    /// An experiment name or folder, an archive, or any part of a split archive.
    path: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
}

impl Verify {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let layout = &cx.layout;
        let target = match self.path.to_str() {
            Some(name) if !self.path.exists() && layout.experiments_dir.join(name).is_dir() => {
                layout.experiments_dir.join(name)
            }
            _ => resolve_archive(layout, &self.path),
        };
        let report = artifact_lib::verify(&target, self.limits.limits(), &cx.progress)?;
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
        let subject = layout.display_path(&report.subject);
        if report.is_valid() {
            println!(
                "{subject}: OK, {} files ({}) match the manifest",
                report.num_files,
                mb(report.total_bytes)
            );
            return Ok(ExitCode::SUCCESS);
        }
        for problem in &report.problems {
            println!("{subject}: {problem}");
        }
        eprintln!(
            "error: {subject}: {} problem(s) found",
            report.problems.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

#[derive(Debug, Args)]
pub struct Split {
    /// The archive to split.
    archive: PathBuf,
    /// Part size, with K, M, G or T (binary units, as `split -b` takes them).
    #[arg(long, default_value = "1G")]
    size: String,
}

impl Split {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let archive = resolve_archive(&cx.layout, &self.archive);
        let size = split::parse_size(&self.size)?;
        let listing = split::split_archive(&archive, size, &cx.progress)?;
        for part in &listing.parts {
            println!("{}  {}  {}", part.sha256, mb(part.size_bytes), part.name);
        }
        println!(
            "{}: {} part(s) of at most {}, listed in {}",
            cx.layout.display_path(&archive),
            listing.parts.len(),
            mb(size),
            cx.layout.display_path(&split::listing_path(&archive))
        );
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, Args)]
pub struct Join {
    /// The archive name, any of its parts, or its parts.json.
    archive: PathBuf,
    /// Where to write the joined archive (default: the archive's own name).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl Join {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let archive = resolve_archive(&cx.layout, &self.archive);
        let report = split::join_parts(&archive, self.output.as_deref(), &cx.progress)?;
        let checked = match &report.checked_against {
            Some(path) => format!("SHA-256 matches {}", cx.layout.display_path(path)),
            None => "no parts.json or sidecar to check it against".to_string(),
        };
        println!(
            "{}: joined {} part(s), {}, {checked}",
            cx.layout.display_path(&report.archive),
            report.num_parts,
            mb(report.size_bytes),
        );
        if report.checked_against.is_none() {
            eprintln!(
                "warning: {}: joined without verification",
                report.archive.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, Args)]
pub struct IndexCmd {
    /// Do not write: exit non-zero listing every difference from what is present.
    #[arg(long)]
    check: bool,
}

impl IndexCmd {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let layout = &cx.layout;
        let shown = layout.display_path(&layout.index_path);
        if self.check {
            let recorded = index::Index::read(&layout.index_path)?;
            let present = index::build(layout, &cx.progress)?;
            let drifts = index::drift(&recorded, &present);
            if drifts.is_empty() {
                println!(
                    "{shown}: up to date ({} experiments)",
                    present.experiments.len()
                );
                return Ok(ExitCode::SUCCESS);
            }
            for drift in &drifts {
                println!("{shown}: {drift}");
            }
            eprintln!(
                "error: {shown} is out of date ({} difference(s)); run `cargo xtask index` and commit it",
                drifts.len()
            );
            return Ok(ExitCode::FAILURE);
        }
        let _lock = index::lock(&layout.index_path)?;
        let present = index::build(layout, &cx.progress)?;
        present.write(&layout.index_path)?;
        println!("{shown}: {} experiments", present.experiments.len());
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, Args)]
pub struct Push {
    /// An experiment name (its archive in the packages folder) or an archive path.
    archive: PathBuf,
    /// The object store URL (default: `remote` in [workspace.metadata.artifacts]).
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// Send every object, even those the remote's checksums say are already there.
    #[arg(long)]
    force: bool,
}

impl Push {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let url = remote_url(cx, &self.remote)?;
        let archive = resolve_archive(&cx.layout, &self.archive);
        let remote = artifact_lib::remote::Remote::open(&url)?;
        let report = remote.push(&archive, self.force, &cx.progress)?;
        for (name, size) in &report.sent {
            println!("sent {name} ({})", mb(*size));
        }
        for name in &report.unchanged {
            println!("unchanged {name} (same SHA-256 already on the remote)");
        }
        let bytes: u64 = report.sent.iter().map(|(_, size)| size).sum();
        println!(
            "{}: pushed to {} ({} object(s) sent, {}; {} unchanged)",
            cx.layout.display_path(&archive),
            remote.url(),
            report.sent.len(),
            mb(bytes),
            report.unchanged.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, Args)]
pub struct Pull {
    /// The experiment name on the remote.
    name: String,
    /// The object store URL (default: `remote` in [workspace.metadata.artifacts]).
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
    /// Where the archive goes (default: artifacts/packages).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Import it once downloaded and verified.
    #[arg(long)]
    import: bool,
    /// With --import: the experiments folder to import into.
    #[arg(long, value_name = "DIR", requires = "import")]
    target: Option<PathBuf>,
    /// With --import: replace an existing experiment of the same name.
    #[arg(long, requires = "import")]
    force: bool,
}

impl Pull {
    fn run(&self, cx: &Context) -> Result<ExitCode> {
        let layout = &cx.layout;
        let url = remote_url(cx, &self.remote)?;
        let remote = artifact_lib::remote::Remote::open(&url)?;
        let output = self
            .output
            .clone()
            .unwrap_or_else(|| layout.packages_dir.clone());
        let report = remote.pull(&self.name, &output, &cx.progress)?;
        if report.already_present {
            println!(
                "{}: already present and verified",
                layout.display_path(&report.archive_path)
            );
        } else {
            println!(
                "{}: pulled {} from {}{}, SHA-256 verified against the remote sidecar",
                layout.display_path(&report.archive_path),
                mb(report.downloaded),
                remote.url(),
                if report.resumed > 0 {
                    format!(" (resumed after {})", mb(report.resumed))
                } else {
                    String::new()
                },
            );
        }
        if self.import {
            Import {
                archive: report.archive_path,
                target: self.target.clone(),
                no_validate: false,
                force: self.force,
                limits: LimitArgs {
                    no_ratio_limit: false,
                },
            }
            .run(cx)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
