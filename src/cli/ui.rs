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

/// A file inside tracked directory `dir`, given by its path inside it, as displayed: relative
/// to the current directory, as every other path mlv prints.
pub fn inside(repo: &mlv::repo::Repo, dir: &mlv::relpath::RelPath, file: &str) -> String {
    match mlv::relpath::RelPath::new(&format!("{}/{file}", dir.as_str())) {
        Ok(rel) => repo.display(&rel),
        // not a valid path (a manifest is checked before this): shown as it is
        Err(_) => format!("{}/{file}", repo.display(dir)),
    }
}

/// `OLD -> NEW` in binary units, or in exact bytes when both round to the same text.
pub fn size_change(old: u64, new: u64) -> String {
    let (o, n) = (human_bytes(old), human_bytes(new));
    if o == n && old != new {
        format!("{old} B -> {new} B")
    } else {
        format!("{o} -> {n}")
    }
}

/// "1 file" / "2 files".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_round_alike_show_bytes() {
        assert_eq!(size_change(2253, 2260), "2253 B -> 2260 B");
        assert_eq!(size_change(8, 12), "8 B -> 12 B");
        assert_eq!(size_change(2048, 4096), "2.0 KiB -> 4.0 KiB");
        assert_eq!(size_change(2253, 2253), "2.2 KiB -> 2.2 KiB");
    }
}
