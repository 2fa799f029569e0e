//! The history options of `push`, `fetch` and `status --remote`.

use mlv::revs::{History, Scope};

/// Which commits' pointers a transfer covers besides the workspace's (combinable).
#[derive(clap::Args, Debug, Default)]
pub struct HistoryArgs {
    /// Also the pointers committed at the tip of every local and remote-tracking branch.
    #[arg(short = 'a', long)]
    all_branches: bool,
    /// Also the pointers committed at every tag.
    #[arg(short = 'T', long)]
    all_tags: bool,
    /// Also the pointers of every commit reachable from any ref, stash entry or worktree HEAD.
    #[arg(short = 'A', long)]
    all_commits: bool,
    /// Also the pointers committed at REV (a branch, tag, commit, HEAD~3; repeatable).
    #[arg(long = "rev", value_name = "REV")]
    revs: Vec<String>,
}

impl HistoryArgs {
    /// The history scope these options name (none: the workspace only).
    pub fn history(&self) -> History {
        History {
            scope: Scope {
                branches: self.all_branches,
                tags: self.all_tags,
                all_commits: self.all_commits,
                ..Scope::WORKSPACE
            },
            revs: self.revs.clone(),
        }
    }
}
