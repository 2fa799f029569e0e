//! `mlv install-hooks` / `mlv uninstall-hooks`: git hooks that run `mlv checkout` after a
//! branch checkout or a merge, and `mlv push` before `git push`.
//!
//! The hooks go where git looks for them: `core.hooksPath` when set, else the repository's
//! (common) `hooks` directory. Each hook mlv writes is a small `sh` script carrying
//! [`MARKER`]. A hook that was there before and was not written by mlv is chained, not
//! replaced: it is renamed to `HOOK.pre-mlv` and mlv's hook runs it first, with the same
//! arguments and standard input, stopping with its exit status when it fails. Any language
//! works, and nothing is edited inside the user's script. `uninstall-hooks` removes only hooks
//! carrying the marker and renames `HOOK.pre-mlv` back.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::fs::{IoContext, IoError};
use crate::repo::Repo;

/// The line that marks a hook as mlv's.
pub const MARKER: &str = "# mlv-hook: written by `mlv install-hooks`";

/// The suffix of a chained hook, saved beside mlv's.
pub const SAVED_SUFFIX: &str = ".pre-mlv";

/// The hooks mlv installs.
pub const HOOKS: [&str; 3] = ["post-checkout", "post-merge", "pre-push"];

/// What happened to one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAction {
    /// Written where there was none.
    Installed,
    /// Written, the existing hook saved as `HOOK.pre-mlv` and run first.
    Chained,
    /// mlv's hook was there already, as it would be written.
    Unchanged,
    /// mlv's hook was there in another version and was rewritten.
    Updated,
    /// mlv's hook was removed.
    Removed,
    /// mlv's hook was removed and the hook it chained put back.
    Restored,
    /// No hook of mlv's was there; anything else was left alone.
    Absent,
}

/// One hook and what happened to it.
#[derive(Debug, Serialize)]
pub struct HookChange {
    /// The hook's name (`post-checkout`).
    pub name: &'static str,
    /// What happened.
    pub action: HookAction,
}

/// What `install`/`uninstall` did.
#[derive(Debug, Serialize)]
pub struct HooksReport {
    /// The hooks directory.
    pub hooks_dir: PathBuf,
    /// Each hook, in [`HOOKS`] order.
    pub hooks: Vec<HookChange>,
}

/// The text of mlv's hook `name`.
pub fn script(name: &str) -> String {
    let body = match name {
        "post-checkout" => {
            "# only branch checkouts ($3 = 1), not `git checkout -- FILE`\n\
             [ \"$3\" = 1 ] || exit 0\n\
             mlv checkout || echo \"mlv hook: 'mlv checkout' failed; git went on, run it again by hand\" >&2\n\
             exit 0\n"
        }
        "post-merge" => {
            "mlv checkout || echo \"mlv hook: 'mlv checkout' failed; git went on, run it again by hand\" >&2\n\
             exit 0\n"
        }
        _ => {
            "# mlv pushes the data to its own default remote before git pushes the pointers\n\
             mlv push || {\n    \
             echo \"mlv hook: 'mlv push' failed, so git push stopped (skip the hook with git push --no-verify)\" >&2\n    \
             exit 1\n\
             }\n"
        }
    };
    format!(
        "#!/bin/sh\n{MARKER}; `mlv uninstall-hooks` removes it\n\
         # (and puts back the hook it chains, saved as {name}{SAVED_SUFFIX}).\n\
         chained=\"$0{SAVED_SUFFIX}\"\n\
         if [ -x \"$chained\" ]; then\n    \"$chained\" \"$@\" || exit $?\nfi\n{body}"
    )
}

/// Where git looks for the hooks of `repo`.
pub fn hooks_dir(repo: &Repo) -> PathBuf {
    let configured = repo
        .git
        .config()
        .ok()
        .and_then(|c| c.get_path("core.hooksPath").ok());
    match configured {
        // relative to the work-tree root, where git runs hooks
        Some(p) => repo.root.join(p),
        None => repo.git.commondir().join("hooks"),
    }
}

fn is_mlv_hook(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(MARKER))
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn saved_path(hook: &Path) -> PathBuf {
    let mut s = hook.as_os_str().to_owned();
    s.push(SAVED_SUFFIX);
    PathBuf::from(s)
}

fn write_hook(path: &Path, text: &str) -> Result<(), IoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::fs::write_atomic_in(path, text.as_bytes(), dir)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).at("cannot make executable", path)
}

/// Installs mlv's hooks; running it again changes nothing.
pub fn install(repo: &Repo) -> Result<HooksReport, Error> {
    let dir = hooks_dir(repo);
    std::fs::create_dir_all(&dir).at("cannot create", &dir)?;
    // refuse before writing anything
    for name in HOOKS {
        let path = dir.join(name);
        let saved = saved_path(&path);
        if exists(&path) && !is_mlv_hook(&path) && exists(&saved) {
            return Err(Refusal::HookInTheWay {
                hook: path.display().to_string(),
                saved: saved.display().to_string(),
            }
            .into());
        }
    }
    let mut hooks = Vec::new();
    for name in HOOKS {
        let path = dir.join(name);
        let text = script(name);
        let action = if !exists(&path) {
            HookAction::Installed
        } else if is_mlv_hook(&path) {
            let current = std::fs::read(&path).at("cannot read", &path)?;
            if current == text.as_bytes() {
                hooks.push(HookChange {
                    name,
                    action: HookAction::Unchanged,
                });
                continue;
            }
            HookAction::Updated
        } else {
            let saved = saved_path(&path);
            std::fs::rename(&path, &saved).at("cannot rename", &path)?;
            HookAction::Chained
        };
        write_hook(&path, &text)?;
        hooks.push(HookChange { name, action });
    }
    Ok(HooksReport {
        hooks_dir: dir,
        hooks,
    })
}

/// Removes mlv's hooks and puts back the ones they chained.
pub fn uninstall(repo: &Repo) -> Result<HooksReport, Error> {
    let dir = hooks_dir(repo);
    let mut hooks = Vec::new();
    for name in HOOKS {
        let path = dir.join(name);
        let action = if exists(&path) && is_mlv_hook(&path) {
            let saved = saved_path(&path);
            if exists(&saved) {
                std::fs::rename(&saved, &path).at("cannot rename", &saved)?;
                HookAction::Restored
            } else {
                std::fs::remove_file(&path).at("cannot remove", &path)?;
                HookAction::Removed
            }
        } else {
            HookAction::Absent
        };
        hooks.push(HookChange { name, action });
    }
    Ok(HooksReport {
        hooks_dir: dir,
        hooks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_the_marker_chain_first_and_fail_as_intended() {
        for name in HOOKS {
            let s = script(name);
            assert!(
                s.starts_with("#!/bin/sh\n# mlv-hook: written by `mlv install-hooks`"),
                "{s}"
            );
            assert!(s.contains("chained=\"$0.pre-mlv\"\nif [ -x \"$chained\" ]; then\n    \"$chained\" \"$@\" || exit $?\nfi\n"), "{s}");
        }
        let co = script("post-checkout");
        assert!(
            co.contains("[ \"$3\" = 1 ] || exit 0\nmlv checkout || echo"),
            "{co}"
        );
        assert!(co.ends_with("exit 0\n"), "{co}");
        assert!(script("post-merge").ends_with("by hand\" >&2\nexit 0\n"));
        let push = script("pre-push");
        assert!(push.contains("mlv push || {\n    echo"), "{push}");
        assert!(push.ends_with("    exit 1\n}\n"), "{push}");
    }
}
