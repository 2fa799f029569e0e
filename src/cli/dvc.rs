//! Unknown subcommands that DVC users type: one line naming the mlv equivalent, or saying
//! honestly that mlv has none yet.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// What mlv offers in place of the DVC command `word`, as the hint line's text.
pub fn suggestion(word: &str) -> Option<&'static str> {
    Some(match word {
        "rm" | "remove" => "`dvc remove` is `mlv untrack` in mlv",
        "install" => "`dvc install` is `mlv install-hooks` in mlv",
        "commit" => "`dvc commit` is `mlv add` in mlv (it hashes and caches the data again)",
        "dag" => "`dvc dag` is `mlv lineage graph` in mlv",
        // `repro` and `stage` are mlv commands now
        "exp" => {
            "mlv has no experiments yet; `mlv stage add` and `mlv repro` run a pipeline, \
             `mlv metrics diff` compares its results across revisions"
        }
        // `get`, `import` and `update` are mlv commands too
        "import-url" | "get-url" => {
            "mlv cannot download from an arbitrary URL yet; `mlv get URL PATH` and `mlv import URL \
             PATH` fetch data tracked in another repository"
        }
        // `metrics` and `params` are mlv commands now
        "plots" => "mlv has no plots yet; `mlv metrics show|diff` and `mlv params diff` compare values across revisions",
        _ => return None,
    })
}

/// The unknown word and the hint for a clap error, when it is an unknown top-level subcommand
/// that DVC users type. `args` are the command-line arguments after the program name.
pub fn hint_for(e: &clap::Error, args: &[String]) -> Option<(String, &'static str)> {
    if e.kind() != ErrorKind::InvalidSubcommand {
        return None;
    }
    let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    // only the top-level command: `mlv remote rm` is not `dvc rm`
    if first_positional(args) != Some(word.as_str()) {
        return None;
    }
    suggestion(word).map(|h| (word.clone(), h))
}

/// The first argument that is not a global option (or the value of `-C`).
fn first_positional(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-C" {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dvc_words_map_to_mlv_commands() {
        assert_eq!(suggestion("rm"), Some("`dvc remove` is `mlv untrack` in mlv"));
        assert_eq!(
            suggestion("install"),
            Some("`dvc install` is `mlv install-hooks` in mlv")
        );
        assert!(suggestion("exp").unwrap().contains("`mlv repro`"));
        assert_eq!(suggestion("repro"), None);
        assert!(suggestion("import-url")
            .unwrap()
            .contains("`mlv import URL PATH`"));
        assert_eq!(suggestion("frobnicate"), None);
    }

    #[test]
    fn first_positional_skips_global_options() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(first_positional(&args(&["-C", "rm", "repro"])), Some("repro"));
        assert_eq!(first_positional(&args(&["--json", "-q", "rm"])), Some("rm"));
        assert_eq!(first_positional(&args(&["remote", "rm"])), Some("remote"));
    }
}
