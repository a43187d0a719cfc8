//! `cargo xtask`: the command line of the experiment artifact tools.
//!
//! Thin by design: clap parses the flags into one enum of commands, each command is a small
//! struct with a `run` method, and all behaviour lives in `artifact_lib`.

mod bench;
mod commands;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Package, move and verify ML experiment artifacts.
#[derive(Debug, Parser)]
#[command(name = "xtask", version, about, long_about = None)]
struct Cli {
    /// The folder every default path is relative to (default: this repository's root).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.root.unwrap_or_else(default_root);
    let context = match commands::Context::new(root, cli.quiet) {
        Ok(context) => context,
        Err(err) => return report(&err),
    };
    match cli.command.run(&context) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// The workspace root: the parent of this crate's manifest folder, fixed at build time so that
/// `cargo xtask` works from any folder of the repository.
fn default_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Prints an error as one line (plus the problem list of a failed verification) and fails.
fn report(err: &artifact_lib::Error) -> ExitCode {
    if let artifact_lib::Error::Verification { problems, .. } = err {
        for problem in problems {
            eprintln!("  {problem}");
        }
    }
    eprintln!("error: {err}");
    ExitCode::FAILURE
}
