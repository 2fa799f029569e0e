//! `lineage verify --signatures`: every record's SSH signature against git's allowed signers
//! file, the record's author e-mail as the principal.

use serde::Serialize;

use crate::error::Error;
use crate::lineage::sign::{allowed_signers, check, SigState};
use crate::lineage::{LineProblem, Lineage};
use crate::repo::Repo;

/// A record whose signature is not good.
#[derive(Debug, Serialize)]
pub struct SignatureCheck {
    /// The record id.
    pub record: String,
    /// The author's e-mail (the principal looked up), if any.
    pub author: Option<String>,
    /// `unsigned`, `bad` or `unknown_key`.
    pub state: SigState,
}

/// What `lineage verify --signatures` found.
#[derive(Debug, Serialize)]
pub struct SignaturesReport {
    /// The allowed signers file used.
    pub allowed_signers: String,
    /// Readable records.
    pub records: usize,
    /// Records with a good signature.
    pub good: usize,
    /// Records whose signature is not good, in file order.
    pub failed: Vec<SignatureCheck>,
    /// Lines that are not valid records.
    pub problems: Vec<LineProblem>,
    /// No bad or unknown-key signatures, no damaged lines, and no unsigned records unless
    /// allowed.
    pub ok: bool,
}

/// Checks every record's signature; `allow_unsigned` lets unsigned records pass.
pub fn verify_signatures(
    repo: &Repo,
    lineage: &Lineage,
    allow_unsigned: bool,
) -> Result<SignaturesReport, Error> {
    let allowed = allowed_signers(&repo.git)?;
    let mut good = 0;
    let mut failed = Vec::new();
    for r in &lineage.records {
        match check(&allowed, r)? {
            SigState::Good => good += 1,
            state => failed.push(SignatureCheck {
                record: r.id.clone(),
                author: r.author.as_ref().map(|a| a.email.clone()),
                state,
            }),
        }
    }
    let ok = lineage.problems.is_empty()
        && failed
            .iter()
            .all(|f| allow_unsigned && f.state == SigState::Unsigned);
    Ok(SignaturesReport {
        allowed_signers: allowed.display().to_string(),
        records: lineage.records.len(),
        good,
        failed,
        problems: lineage.problems.clone(),
        ok,
    })
}
