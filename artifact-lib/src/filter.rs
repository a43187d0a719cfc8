//! Which files count as model weights, for `package --no-models`: glob patterns, not substrings.

use glob::{MatchOptions, Pattern};

/// The built-in model-weight patterns.
///
/// A pattern without `/` matches a file name at any depth; a pattern ending in `/` matches a
/// folder name at any depth (everything below it is left out); any other pattern matches the
/// whole `/`-separated path relative to the experiment.
pub const DEFAULT_MODEL_PATTERNS: &[&str] = &[
    "pytorch_model*.bin",
    "adapter_model.bin",
    "*.safetensors",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.h5",
    "*.onnx",
    "*.gguf",
    "*.msgpack",
    "checkpoints/",
    "checkpoint-*/",
];

#[derive(Debug, Clone)]
enum Rule {
    FileName(Pattern),
    Folder(Pattern),
    Path(Pattern),
}

/// A compiled set of model-weight patterns.
#[derive(Debug, Clone)]
pub struct ModelFilter {
    patterns: Vec<String>,
    rules: Vec<Rule>,
}

impl Default for ModelFilter {
    fn default() -> Self {
        ModelFilter::new(DEFAULT_MODEL_PATTERNS).expect("built-in patterns are valid")
    }
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl ModelFilter {
    /// Compiles `patterns`; fails naming the first pattern that is not a valid glob.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<ModelFilter, String> {
        let mut rules = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let compile = |text: &str| {
                Pattern::new(text).map_err(|err| format!("`{pattern}` is not a valid glob: {err}"))
            };
            let rule = if let Some(folder) = pattern.strip_suffix('/') {
                Rule::Folder(compile(folder)?)
            } else if pattern.contains('/') {
                Rule::Path(compile(pattern)?)
            } else {
                Rule::FileName(compile(pattern)?)
            };
            rules.push(rule);
        }
        Ok(ModelFilter {
            patterns: patterns.iter().map(|p| p.as_ref().to_string()).collect(),
            rules,
        })
    }

    /// The patterns this filter was built from.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether the file at `relative_path` (`/`-separated, relative to the experiment) is model
    /// weights.
    pub fn is_model_file(&self, relative_path: &str) -> bool {
        let (folders, file_name) = match relative_path.rsplit_once('/') {
            Some((folders, name)) => (Some(folders), name),
            None => (None, relative_path),
        };
        self.rules.iter().any(|rule| match rule {
            Rule::FileName(p) => p.matches_with(file_name, OPTIONS),
            Rule::Path(p) => p.matches_with(relative_path, OPTIONS),
            Rule::Folder(p) => folders
                .into_iter()
                .flat_map(|f| f.split('/'))
                .any(|folder| p.matches_with(folder, OPTIONS)),
        })
    }

    /// The rule the Python tools used: a substring match on two names. Their archives made with
    /// `--no-models` list such files in the manifest without carrying them.
    pub fn python_no_models_rule(relative_path: &str) -> bool {
        relative_path.contains("pytorch_model.bin") || relative_path.contains("model.safetensors")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_catch_weights_not_configs() {
        let filter = ModelFilter::default();
        for weights in [
            "pytorch_model.bin",
            "pytorch_model-00001-of-00002.bin",
            "model.safetensors",
            "model-00001-of-00003.safetensors",
            "safety_sft/model.safetensors",
            "adapter_model.bin",
            "optimizer.pt",
            "tf_model.h5",
            "model.onnx",
            "model.gguf",
            "checkpoints/step_100/trainer_state.json",
            "checkpoint-500/optimizer.pt",
            "checkpoint-500/config.json",
        ] {
            assert!(filter.is_model_file(weights), "{weights} should be weights");
        }
        for kept in [
            "config.json",
            "tokenizer.json",
            "backdoor_info.json",
            "logs/train.log",
            "training_args.bin",
            "safety_sft/config.json",
            "my_checkpoints.txt",
        ] {
            assert!(!filter.is_model_file(kept), "{kept} should be kept");
        }
    }

    #[test]
    fn path_patterns_anchor_at_the_experiment() {
        let filter = ModelFilter::new(&["logs/*.bin"]).unwrap();
        assert!(filter.is_model_file("logs/a.bin"));
        assert!(!filter.is_model_file("x/logs/a.bin"));
        assert!(!filter.is_model_file("logs/deep/a.bin"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = ModelFilter::new(&["[oops"]).unwrap_err();
        assert!(err.contains("[oops"), "{err}");
    }
}
