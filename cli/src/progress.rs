//! Terminal progress for the upload pipeline (indicatif): a hashing bar, then an upload bar with
//! bytes, MB/s and ETA. Bars draw on stderr and hide themselves when it is not a terminal.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::upload::{Progress, Step};

pub struct BarProgress {
    total: u64,
    hash: ProgressBar,
    upload: Mutex<Option<ProgressBar>>,
}

fn style(verb: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "  {verb:9} [{{bar:32.cyan/blue}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} ETA {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl BarProgress {
    pub fn new(total: u64) -> Self {
        let hash = ProgressBar::new(total).with_style(style("hashing"));
        Self {
            total,
            hash,
            upload: Mutex::new(None),
        }
    }

    fn with_upload(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self
            .upload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f(bar)
        }
    }
}

impl Progress for BarProgress {
    fn hashed(&self, bytes: u64) {
        self.hash.inc(bytes);
    }
    fn started(&self, total: u64, already_stored: u64, _chunks: u32) {
        self.hash.finish_and_clear();
        let bar = ProgressBar::new(total.max(self.total)).with_style(style("uploading"));
        bar.set_position(already_stored);
        bar.reset_eta();
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.upload.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }
    fn chunk_stored(&self, _index: u32, bytes: u64) {
        self.with_upload(|b| b.inc(bytes));
    }
    fn retrying(&self, step: Step, attempt: u32, delay: Duration, error: &str) {
        let line = format!("  retrying {step} (attempt {attempt} failed: {error}) in {delay:?}");
        let mut shown = false;
        self.with_upload(|b| {
            b.println(&line);
            shown = true;
        });
        if !shown {
            eprintln!("{line}");
        }
    }
    fn finished(&self) {
        self.with_upload(|b| b.finish_and_clear());
    }
}

impl Drop for BarProgress {
    fn drop(&mut self) {
        // An upload that failed midway must not leave a bar drawn over the error line.
        self.hash.finish_and_clear();
        self.with_upload(|b| b.finish_and_clear());
    }
}
