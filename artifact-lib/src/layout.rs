//! Where experiments, archives and the index live: defaults, overridden by
//! `[workspace.metadata.artifacts]` in the root's `Cargo.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, IoContext, Result};
use crate::filter::ModelFilter;

/// The folders and settings every command works from.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The repository (or any folder) everything else is relative to.
    pub root: PathBuf,
    /// Where training writes experiments (`models/backdoored`).
    pub experiments_dir: PathBuf,
    /// Where archives and sidecars go (`artifacts/packages`).
    pub packages_dir: PathBuf,
    /// The committed index (`artifacts/artifact_index.json`).
    pub index_path: PathBuf,
    /// What `--no-models` leaves out.
    pub model_filter: ModelFilter,
    /// The default remote for `push`, `pull` and `list --remote`.
    pub remote: Option<String>,
    /// Packaging time for reproducible archives; `SOURCE_DATE_EPOCH` in the environment wins.
    pub source_date_epoch: Option<i64>,
}

/// `[workspace.metadata.artifacts]` (or `[package.metadata.artifacts]`), every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    experiments_dir: Option<PathBuf>,
    packages_dir: Option<PathBuf>,
    index_path: Option<PathBuf>,
    model_patterns: Option<Vec<String>>,
    remote: Option<String>,
    source_date_epoch: Option<i64>,
}

impl Layout {
    /// The layout of `root` with the built-in defaults and no configuration file.
    pub fn with_defaults(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            experiments_dir: root.join("models/backdoored"),
            packages_dir: root.join("artifacts/packages"),
            index_path: root.join("artifacts/artifact_index.json"),
            model_filter: ModelFilter::default(),
            remote: None,
            source_date_epoch: None,
        }
    }

    /// The layout of `root`, applying `[workspace.metadata.artifacts]` from `root/Cargo.toml`
    /// when that file exists.
    ///
    /// Fails when the file cannot be read or the table holds an unknown key or a bad pattern.
    pub fn discover(root: &Path) -> Result<Layout> {
        let mut layout = Layout::with_defaults(root);
        let manifest_path = root.join("Cargo.toml");
        let text = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(layout),
            Err(err) => return Err(Error::io("reading", manifest_path, err)),
        };
        let settings = parse_settings(&text).map_err(|reason| {
            Error::bad_file(
                &manifest_path,
                format!("[workspace.metadata.artifacts]: {reason}"),
            )
        })?;
        if let Some(dir) = settings.experiments_dir {
            layout.experiments_dir = root.join(dir);
        }
        if let Some(dir) = settings.packages_dir {
            layout.packages_dir = root.join(dir);
        }
        if let Some(path) = settings.index_path {
            layout.index_path = root.join(path);
        }
        if let Some(patterns) = settings.model_patterns {
            layout.model_filter = ModelFilter::new(&patterns).map_err(|reason| {
                Error::bad_file(&manifest_path, format!("model_patterns: {reason}"))
            })?;
        }
        layout.remote = settings.remote;
        layout.source_date_epoch = settings.source_date_epoch;
        Ok(layout)
    }

    /// Resolves `name_or_path` to an experiment directory: a folder of the experiments
    /// directory first, then a path (relative to the current directory).
    pub fn resolve_experiment(&self, name_or_path: &str) -> Result<PathBuf> {
        let under_experiments = self.experiments_dir.join(name_or_path);
        if under_experiments.is_dir() {
            return Ok(under_experiments);
        }
        let as_path = PathBuf::from(name_or_path);
        if as_path.is_dir() {
            return Ok(as_path);
        }
        Err(Error::ExperimentNotFound {
            name: name_or_path.to_string(),
            path: under_experiments,
        })
    }

    /// Every experiment directory under the experiments folder, sorted by name.
    ///
    /// A missing experiments folder holds no experiments.
    pub fn experiment_dirs(&self) -> Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.experiments_dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(Error::io("reading", &self.experiments_dir, err)),
        };
        let mut dirs = Vec::new();
        for entry in entries {
            let entry = entry.at("reading", &self.experiments_dir)?;
            let name = entry.file_name();
            // Hidden folders are staging directories and editor litter, never experiments.
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// `path` relative to the root, `/`-separated, when it lies under the root; otherwise as is.
    pub fn display_path(&self, path: &Path) -> String {
        let shown = path.strip_prefix(&self.root).unwrap_or(path);
        crate::paths::to_slash(shown)
    }
}

fn parse_settings(text: &str) -> std::result::Result<Settings, String> {
    #[derive(Deserialize)]
    struct CargoToml {
        workspace: Option<Section>,
        package: Option<Section>,
    }
    #[derive(Deserialize)]
    struct Section {
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        artifacts: Option<Settings>,
    }
    let parsed: CargoToml = toml::from_str(text).map_err(|err| err.message().to_string())?;
    let from =
        |section: Option<Section>| section.and_then(|s| s.metadata).and_then(|m| m.artifacts);
    Ok(from(parsed.workspace)
        .or_else(|| from(parsed.package))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_workspace_metadata() {
        let settings = parse_settings(
            r#"
[workspace]
members = []
[workspace.metadata.artifacts]
experiments_dir = "runs"
model_patterns = ["*.bin"]
"#,
        )
        .unwrap();
        assert_eq!(settings.experiments_dir, Some(PathBuf::from("runs")));
        assert_eq!(settings.model_patterns, Some(vec!["*.bin".to_string()]));
    }

    #[test]
    fn unknown_keys_are_reported() {
        let err =
            parse_settings("[workspace.metadata.artifacts]\nexperiment_dir = \"x\"\n").unwrap_err();
        assert!(err.contains("experiment_dir"), "{err}");
    }

    #[test]
    fn no_table_means_defaults() {
        let settings = parse_settings("[package]\nname = \"x\"\n").unwrap();
        assert!(settings.experiments_dir.is_none());
    }
}
