//! One place that turns errors into messages, hints and exit codes.

use std::error::Error as _;
use std::process::ExitCode;

use mlv::error::ErrorKind;
use serde::Serialize;

use super::ui::Ui;

/// Exit codes (documented in docs/cli.md).
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// The command failed or refused.
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage.
    pub const USAGE: u8 = 2;
    /// Damaged data was found during an operation: a digest did not match.
    pub const INTEGRITY: u8 = 3;
    /// `mlv fsck` found problems it did not repair.
    pub const PROBLEMS: u8 = 4;
    /// The repository is busy: another mlv process kept its lock past the timeout.
    pub const BUSY: u8 = 5;
}

/// An error on its way to the user.
pub struct CliError {
    /// The message.
    pub message: String,
    /// Underlying causes, outermost first.
    pub causes: Vec<String>,
    /// What to do.
    pub hint: Option<String>,
    /// The exit code.
    pub code: u8,
    /// Fields added to the `--json` error document (an object), when there are any.
    pub json_extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The exit code of an error of this kind: the one place kinds become exit codes.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Integrity => code::INTEGRITY,
        ErrorKind::Busy => code::BUSY,
        ErrorKind::Refused | ErrorKind::Environment | ErrorKind::Failure => code::FAILURE,
    }
}

impl From<mlv::Error> for CliError {
    fn from(e: mlv::Error) -> Self {
        let code = exit_code(e.kind());
        let mut causes = Vec::new();
        let mut src = e.source();
        // `#[error(transparent)]` layers repeat the message; skip exact repeats.
        let top = e.to_string();
        while let Some(s) = src {
            let text = s.to_string();
            if text != top && causes.last() != Some(&text) {
                causes.push(text);
            }
            src = s.source();
        }
        CliError {
            message: top,
            causes,
            hint: e.hint(),
            code,
            json_extra: None,
        }
    }
}

impl CliError {
    /// A plain failure.
    pub fn msg(message: impl Into<String>, hint: Option<&str>) -> Self {
        CliError {
            message: message.into(),
            causes: Vec::new(),
            hint: hint.map(str::to_string),
            code: code::FAILURE,
            json_extra: None,
        }
    }

    /// Prints the error on stderr, with its causes and hint.
    /// Every line is [`printable`](mlv::relpath::printable): whatever path or remote text an
    /// error carries, it cannot drive the terminal.
    pub fn print(&self, ui: &Ui) {
        use mlv::relpath::printable;
        eprintln!("{}: {}", ui.paint("error", "1;31"), printable(&self.message));
        for c in &self.causes {
            eprintln!("  caused by: {}", printable(c));
        }
        if let Some(h) = &self.hint {
            eprintln!("{}: {}", ui.paint("hint", "36"), printable(h));
        }
    }

    /// Prints the error (and, in JSON mode, a JSON error document on stdout).
    pub fn report(&self, ui: &Ui) -> ExitCode {
        self.print(ui);
        if ui.json {
            #[derive(Serialize)]
            struct Doc<'a> {
                error: &'a str,
                causes: &'a [String],
                hint: Option<&'a str>,
                exit_code: u8,
                #[serde(flatten, skip_serializing_if = "Option::is_none")]
                extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
            }
            ui.json(&Doc {
                error: &self.message,
                causes: &self.causes,
                hint: self.hint.as_deref(),
                exit_code: self.code,
                extra: self.json_extra.as_ref(),
            });
        }
        ExitCode::from(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_exit_codes() {
        assert_eq!(exit_code(ErrorKind::Refused), 1);
        assert_eq!(exit_code(ErrorKind::Failure), 1);
        assert_eq!(exit_code(ErrorKind::Environment), 1);
        assert_eq!(exit_code(ErrorKind::Integrity), 3);
        assert_eq!(exit_code(ErrorKind::Busy), 5);
    }

    #[test]
    fn a_corrupt_cache_object_exits_3_however_it_is_wrapped() {
        use mlv::cache::CacheError;
        use mlv::hash::Digest;
        let corrupt = || CacheError::Corrupt {
            digest: Digest::of_bytes(b"named"),
            path: "/cache/ab/cdef".into(),
            actual: Digest::of_bytes(b"held"),
        };
        let errors: Vec<mlv::Error> = vec![
            corrupt().into(),
            mlv::workspace::WorkspaceError::Cache(corrupt()).into(),
            mlv::remote::RemoteError::Cache(corrupt()).into(),
        ];
        for e in errors {
            assert_eq!(CliError::from(e).code, code::INTEGRITY);
        }
    }
}
