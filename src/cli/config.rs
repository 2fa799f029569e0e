//! `mlv config KEY [VALUE] [--local] [--unset] [--list]`.

use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::config::{self, Scope};

use super::{CliError, Ctx};

/// Get or set one key of the repository's configuration, as `git config` does.
///
/// Keys are dotted: core.autostage, core.remote, core.lock_timeout, cache.dir, cache.link,
/// cache.pack_min_objects, cache.link_as_root, gc.grace, lineage.sign, remote.NAME.url,
/// remote.NAME.OPTION.
/// Without VALUE, prints the value (exit 1 when unset); with VALUE, writes .mlv/config.toml
/// (committed), or with --local the git-ignored .mlv/config.local.toml. A bad value is refused
/// before anything is written; secrets may only be stored with --local, and are never printed.
///
/// Examples:
///   mlv config cache.link hardlink,copy
///   mlv config --local remote.origin.secret_access_key KEY
///   mlv config --list
#[derive(clap::Args)]
pub struct Args {
    /// The key, e.g. cache.link or remote.origin.endpoint.
    #[arg(required_unless_present = "list")]
    key: Option<String>,
    /// The new value.
    #[arg(conflicts_with_all = ["unset", "list"], allow_negative_numbers = true)]
    value: Option<String>,
    /// Use the git-ignored .mlv/config.local.toml (reads: only that file).
    #[arg(long)]
    local: bool,
    /// Remove the key from the file.
    #[arg(long, conflicts_with = "list")]
    unset: bool,
    /// Print every key set as key=value lines (secrets shown as <redacted>).
    #[arg(short, long, conflicts_with = "key")]
    list: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let read_scope = args.local.then_some(Scope::Local);
    let write_scope = if args.local {
        Scope::Local
    } else {
        Scope::Committed
    };
    if args.list {
        let listing = config::list(&repo, read_scope)?;
        ctx.ui.json(&listing);
        for (k, v) in &listing.0 {
            ctx.ui.out(&format!("{k}={v}"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let key = args.key.expect("clap requires KEY without --list");
    if args.unset || args.value.is_some() {
        let _lock = ctx.lock(&repo, LockMode::Exclusive, "config")?;
        match &args.value {
            Some(v) => config::set(&repo, &key, v, write_scope)?,
            None => config::unset(&repo, &key, write_scope)?,
        }
        ctx.ui
            .json(&serde_json::json!({ "key": key, "set": args.value.is_some() }));
        return Ok(ExitCode::SUCCESS);
    }
    let value = config::get(&repo, &key, read_scope)?;
    ctx.ui.json(&serde_json::json!({ "key": key, "value": value }));
    match value {
        Some(v) => {
            ctx.ui.out(&v);
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(super::error::code::FAILURE)),
    }
}
