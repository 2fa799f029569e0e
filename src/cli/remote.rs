//! `mlv remote add|list|remove|modify|default|upgrade`.

use std::process::ExitCode;

use clap::Subcommand;
use mlv::lock::LockMode;
use mlv::ops::remotes::{self, Scope};

use super::{CliError, Ctx};

/// Manage remotes: where `push` sends objects and `pull` gets them.
///
/// URLs: a local path or file://, s3://BUCKET/PREFIX (with endpoint/region options for
/// S3-compatible stores), gs://BUCKET/PREFIX, az://CONTAINER/PREFIX (or abfs://, or
/// https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX). Credentials come from each
/// cloud's usual environment variables and files; secrets may only be stored with --local.
///
/// Example: mlv remote add origin s3://ml-data/projects/churn --default
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Subcommand)]
enum RemoteCommand {
    /// Add a remote. Example: mlv remote add origin s3://ml-data/churn --default
    Add {
        /// Its name.
        name: String,
        /// Where it is.
        url: String,
        /// Make it the default remote.
        #[arg(short, long)]
        default: bool,
        /// The format a first push gives the remote if it holds nothing yet: 2 (packs and an
        /// index; the default) or 1 (one object per file, readable by mlv before format 2 and
        /// by `mlv.get_url`). Stored as the remote's `format` option (`mlv remote modify NAME
        /// format 1`). A format already recorded on the remote always wins.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        format: Option<u8>,
        /// Write to the git-ignored .mlv/config.local.toml instead of .mlv/config.toml.
        #[arg(long)]
        local: bool,
    },
    /// List remotes (secrets hidden). Example: mlv remote list
    List,
    /// Remove a remote. Example: mlv remote remove origin
    Remove {
        /// Its name.
        name: String,
    },
    /// Set or unset one option. Example: mlv remote modify origin endpoint http://127.0.0.1:9000
    Modify {
        /// The remote's name.
        name: String,
        /// The option (url, endpoint, region, profile, timeout, retries, jobs, format, ...).
        key: String,
        /// The value; omit with --unset.
        #[arg(required_unless_present = "unset")]
        value: Option<String>,
        /// Remove the option.
        #[arg(long, conflicts_with = "value")]
        unset: bool,
        /// Write to the git-ignored .mlv/config.local.toml (required for secrets).
        #[arg(long)]
        local: bool,
    },
    /// Turn a remote into remote format 2 (packs and an index: small edits of large files move
    /// few bytes, many files move in few requests). Writes `mlv-remote.toml` at the remote's
    /// root; objects already there stay readable by older mlv. Idempotent. (A remote mlv
    /// initialises, on the first push to an empty location, is format 2 already unless it was
    /// added with --format 1.) Until `fsck --remote`
    /// and `gc --remote` support format 2, they refuse such a remote.
    /// Example: mlv remote upgrade origin
    Upgrade {
        /// The remote's name.
        name: String,
    },
    /// Make a remote the default. Example: mlv remote default origin
    Default {
        /// Its name.
        name: String,
        /// Write to the git-ignored .mlv/config.local.toml.
        #[arg(long)]
        local: bool,
    },
}

fn scope(local: bool) -> Scope {
    if local {
        Scope::Local
    } else {
        Scope::Committed
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let mode = match args.command {
        RemoteCommand::List => LockMode::Shared,
        _ => LockMode::Exclusive,
    };
    let _lock = ctx.lock(&repo, mode, "remote")?;
    match args.command {
        RemoteCommand::Add {
            name,
            url,
            default,
            format,
            local,
        } => {
            remotes::add(&repo, &name, &url, default, format, scope(local))?;
            ctx.ui
                .json(&serde_json::json!({ "added": name, "default": default }));
            ctx.ui.info(&format!(
                "added remote {name}{}",
                if default { " (default)" } else { "" }
            ));
        }
        RemoteCommand::List => {
            let list = remotes::list(&repo)?;
            ctx.ui.json(&list);
            for r in &list {
                let mark = if r.default { " (default)" } else { "" };
                ctx.ui.out(&format!("{}\t{}{mark}", r.name, r.url));
                if ctx.ui.verbose {
                    for (k, v) in &r.options {
                        ctx.ui.out(&format!("\t{k} = {v}"));
                    }
                }
            }
        }
        RemoteCommand::Remove { name } => {
            remotes::remove(&repo, &name)?;
            ctx.ui.json(&serde_json::json!({ "removed": name }));
            ctx.ui.info(&format!("removed remote {name}"));
        }
        RemoteCommand::Modify {
            name,
            key,
            value,
            unset,
            local,
        } => {
            let value = if unset { None } else { value };
            remotes::modify(&repo, &name, &key, value.as_deref(), scope(local))?;
            ctx.ui.json(&serde_json::json!({ "modified": name, "key": key }));
            ctx.ui.info(&format!(
                "{} {key} of remote {name}",
                if unset { "unset" } else { "set" }
            ));
        }
        RemoteCommand::Upgrade { name } => {
            let remote = remotes::open(&repo, Some(&name), None)?;
            let report = ctx.runtime()?.block_on(remotes::upgrade(&remote, &name))?;
            ctx.ui.json(&report);
            ctx.ui.info(&match report.outcome {
                mlv::remote::packed::Upgrade::Upgraded => {
                    format!("remote {name} now uses format 2 ({})", report.url)
                }
                mlv::remote::packed::Upgrade::AlreadyFormat2 => {
                    format!("remote {name} already uses format 2; nothing changed")
                }
            });
        }
        RemoteCommand::Default { name, local } => {
            remotes::set_default(&repo, &name, scope(local))?;
            ctx.ui.json(&serde_json::json!({ "default": name }));
            ctx.ui.info(&format!("default remote is now {name}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
