//! Output conventions: results on stdout, messages on stderr, `--json` for scripts.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// How to talk to the user.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Print results as one JSON document on stdout.
    pub json: bool,
    /// Print no messages (results and errors still go out).
    pub quiet: bool,
    /// Print details.
    pub verbose: bool,
    /// Colour on stderr.
    pub color: bool,
    /// Show progress bars.
    pub progress: bool,
}

impl Ui {
    /// Settles the modes from the flags and the environment.
    pub fn new(json: bool, quiet: bool, verbose: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let no_progress = std::env::var_os("MLV_NO_PROGRESS").is_some_and(|v| !v.is_empty());
        Ui {
            json,
            quiet,
            verbose,
            color: tty && !no_color,
            progress: tty && !json && !quiet && !no_progress,
        }
    }

    /// A line of the command's result on stdout (not in JSON mode).
    pub fn out(&self, line: &str) {
        if !self.json {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
        }
    }

    /// A message on stderr (not when quiet).
    pub fn info(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// The report as JSON on stdout (JSON mode only).
    pub fn json<T: Serialize>(&self, report: &T) {
        if self.json {
            let mut o = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut o, report);
            let _ = writeln!(o);
        }
    }

    /// `text` in an ANSI colour when colour is on.
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Bytes in binary units.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// "1 file" / "2 files".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
