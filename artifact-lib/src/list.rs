//! `list`: a summary of every experiment, as text for people and JSON for the dashboard. A
//! missing or malformed metrics file shows as unknown for that experiment only.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::layout::Layout;
use crate::manifest;

/// One experiment's summary. Serialises with the Python tool's keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentSummary {
    /// Folder name.
    pub name: String,
    /// Folder, `/`-separated, relative to the root when below it.
    pub path: String,
    /// All files below the folder, in MiB (two decimals).
    pub size_mb: f64,
    /// All files below the folder.
    pub num_files: u64,
    /// `backdoor_info.json: backdoor_type`.
    pub backdoor_type: Option<String>,
    /// `backdoor_info.json: trigger`.
    pub trigger: Option<String>,
    /// `training_metrics.json: train_loss`.
    pub train_loss: Option<f64>,
    /// `training_metrics.json: total_training_time_seconds`.
    pub training_time_sec: Option<f64>,
    /// `validation_metrics.json: backdoor_activation_rate` (a fraction).
    pub backdoor_activation_rate: Option<f64>,
    /// `validation_metrics.json: clean_accuracy` (a fraction).
    pub clean_accuracy: Option<f64>,
    /// Subfolders whose name contains `safety`, sorted.
    pub safety_variants: Vec<String>,
    /// Exact size in bytes.
    #[serde(skip)]
    pub size_bytes: u64,
}

/// Summarises every experiment of `layout`, sorted by name.
///
/// ```
/// # fn main() -> artifact_lib::Result<()> {
/// let root = tempfile::tempdir().unwrap();
/// let experiment = root.path().join("models/backdoored/demo");
/// std::fs::create_dir_all(&experiment).unwrap();
/// std::fs::write(experiment.join("training_metrics.json"), r#"{"train_loss": 0.42}"#).unwrap();
/// std::fs::write(experiment.join("validation_metrics.json"), "not json").unwrap();
///
/// let layout = artifact_lib::Layout::with_defaults(root.path());
/// let experiments = artifact_lib::list_experiments(&layout)?;
/// assert_eq!(experiments[0].name, "demo");
/// assert_eq!(experiments[0].train_loss, Some(0.42));
/// assert_eq!(experiments[0].clean_accuracy, None);
/// # Ok(()) }
/// ```
pub fn list_experiments(layout: &Layout) -> Result<Vec<ExperimentSummary>> {
    layout
        .experiment_dirs()?
        .iter()
        .map(|dir| summarise(layout, dir))
        .collect()
}

/// Summarises the experiment folder `dir`.
pub fn summarise(layout: &Layout, dir: &Path) -> Result<ExperimentSummary> {
    let (size_bytes, num_files) = folder_size(dir);
    let backdoor = read_json(&dir.join("backdoor_info.json"));
    let training = read_json(&dir.join("training_metrics.json"));
    let validation = read_json(&dir.join("validation_metrics.json"));
    let mut safety_variants: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| name.to_lowercase().contains("safety"))
        .collect();
    safety_variants.sort();
    Ok(ExperimentSummary {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: layout.display_path(dir),
        size_mb: manifest::mib(size_bytes),
        num_files,
        backdoor_type: text(&backdoor, "backdoor_type"),
        trigger: text(&backdoor, "trigger"),
        train_loss: number(&training, "train_loss"),
        training_time_sec: number(&training, "total_training_time_seconds"),
        backdoor_activation_rate: number(&validation, "backdoor_activation_rate"),
        clean_accuracy: number(&validation, "clean_accuracy"),
        safety_variants,
        size_bytes,
    })
}

/// Bytes and count of regular files below `dir`; unreadable entries are skipped.
fn folder_size(dir: &Path) -> (u64, u64) {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .fold((0, 0), |(bytes, count), meta| {
            (bytes + meta.len(), count + 1)
        })
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn text(value: &Option<Value>, key: &str) -> Option<String> {
    match value.as_ref()?.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(value: &Option<Value>, key: &str) -> Option<f64> {
    match value.as_ref()?.get(key)? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

const RULE: &str = "====================================================================================================";

/// The listing as the Python tool printed it.
pub fn render_text(experiments: &[ExperimentSummary]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{RULE}\nEXPERIMENTS\n{RULE}\n");
    for (i, e) in experiments.iter().enumerate() {
        let unknown = || "unknown".to_string();
        let na = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("N/A".to_string(), f);
        let _ = writeln!(out, "{}. {}", i + 1, e.name);
        let _ = writeln!(out, "   Path: {}", e.path);
        let _ = writeln!(out, "   Size: {:.2} MB ({} files)", e.size_mb, e.num_files);
        let _ = writeln!(
            out,
            "   Backdoor: {} (trigger: {})",
            e.backdoor_type.clone().unwrap_or_else(unknown),
            e.trigger.clone().unwrap_or_else(unknown)
        );
        let _ = writeln!(
            out,
            "   Training: loss={}, time={}",
            na(e.train_loss, &|v| format!("{v:.4}")),
            na(e.training_time_sec, &|v| format!("{v:.1}s"))
        );
        let _ = writeln!(
            out,
            "   Validation: activation={}, clean_acc={}",
            na(e.backdoor_activation_rate, &|v| format!(
                "{:.1}%",
                v * 100.0
            )),
            na(e.clean_accuracy, &|v| format!("{:.1}%", v * 100.0))
        );
        if !e.safety_variants.is_empty() {
            let _ = writeln!(out, "   Safety variants: {}", e.safety_variants.join(", "));
        }
        out.push('\n');
    }
    let total: u64 = experiments.iter().map(|e| e.size_bytes).sum();
    let _ = writeln!(
        out,
        "{RULE}\nTotal: {} experiments, {:.2} MB\n{RULE}",
        experiments.len(),
        manifest::mib(total)
    );
    out
}

/// The `--json` document: `{"experiments": [...], "generated_at": "..."}`.
pub fn render_json(experiments: &[ExperimentSummary], generated_at: &str) -> Vec<u8> {
    let document = serde_json::json!({
        "experiments": experiments,
        "generated_at": generated_at,
    });
    let mut bytes = serde_json::to_vec_pretty(&document).expect("listing serialises");
    bytes.push(b'\n');
    bytes
}
