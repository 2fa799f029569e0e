//! Progress bars (indicatif) behind the library's `Progress` trait: only on a terminal, and
//! only once an operation has run for a moment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use mlv::progress::{NoProgress, Progress};

/// How long an operation runs before its bar appears (`MLV_PROGRESS_DELAY_MS` overrides it,
/// for tests).
fn delay() -> Duration {
    std::env::var("MLV_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(Duration::from_millis(400), Duration::from_millis)
}

/// A progress bar on stderr that appears after a short delay.
pub struct Bar {
    bar: ProgressBar,
    state: Mutex<(Instant, bool)>,
    by_bytes: AtomicBool,
    delay: Duration,
}

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        Bar {
            bar,
            state: Mutex::new((Instant::now(), false)),
            by_bytes: AtomicBool::new(false),
            delay: delay(),
        }
    }

    fn maybe_show(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if !s.1 && s.0.elapsed() >= self.delay {
            s.1 = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, items: u64, bytes: u64) {
        let style = if bytes > 0 {
            "{msg:>12} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}"
        } else {
            "{msg:>12} [{bar:30}] {human_pos}/{human_len} {rate} {eta}"
        };
        if let Ok(s) = ProgressStyle::with_template(style) {
            // whole items per second (`4,538/s`), not `4,538.1461/s`
            let s = s.with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", HumanCount(state.per_sec().round() as u64));
            });
            self.bar.set_style(s.progress_chars("=> "));
        }
        // A bar finished by the previous phase draws nothing until it is reset.
        self.bar.reset();
        self.bar.set_message(what.to_string());
        self.bar.set_position(0);
        self.by_bytes.store(bytes > 0, Ordering::Relaxed);
        self.bar.set_length(if bytes > 0 { bytes } else { items });
        if let Ok(mut s) = self.state.lock() {
            s.0 = Instant::now();
        }
    }

    fn advance(&self, items: u64, bytes: u64) {
        let unit = if self.by_bytes.load(Ordering::Relaxed) {
            bytes
        } else {
            items
        };
        self.bar.inc(unit);
        self.maybe_show();
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
        if let Ok(mut s) = self.state.lock() {
            s.1 = false;
        }
    }
}

/// The progress reporter for a command: a bar on a terminal, nothing otherwise.
pub fn reporter(show: bool) -> Box<dyn Progress> {
    if show {
        Box::new(Bar::new())
    } else {
        Box::new(NoProgress)
    }
}
