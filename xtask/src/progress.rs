//! Progress bars on a terminal, nothing elsewhere (CI logs, pipes, `--quiet`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use artifact_lib::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Byte progress bars on stderr, one per phase, drawn only on a terminal.
pub struct Bar {
    visible: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl Bar {
    /// Bars that draw only when `enabled`, stderr is a terminal and `CI` is unset.
    pub fn new(enabled: bool) -> Bar {
        Bar {
            visible: enabled && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
            current: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            f(bar);
        }
    }
}

impl Progress for Bar {
    fn begin(&self, label: &str, total_bytes: u64) {
        if !self.visible {
            return;
        }
        let bar =
            ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr_with_hz(8));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:32!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|bar| bar.inc(bytes));
    }

    fn finish(&self) {
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            bar.finish_and_clear();
        }
    }
}
