use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// Progress bars on stderr for fetching and verifying models.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            bar: Mutex::new(None),
        }
    }
}

impl moat_models::Progress for Bars {
    fn stage(&self, what: &str, total: Option<u64>) {
        let mut slot = self.bar.lock().expect("progress lock");
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            ),
            None => {
                let b = ProgressBar::new_spinner();
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            }
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_message(what.to_string());
        *slot = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(b) = self.bar.lock().expect("progress lock").as_ref() {
            b.inc(bytes);
        }
    }

    fn done(&self) {
        if let Some(b) = self.bar.lock().expect("progress lock").take() {
            b.finish_and_clear();
        }
    }
}

/// A bar of counted items on stderr (hidden when stderr is not a terminal).
pub fn bar(total: u64, unit: &str) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(&format!("[{{bar:30}}] {{pos}}/{{len}} {unit} eta {{eta}}"))
            .expect("template")
            .progress_chars("=> "),
    )
}
