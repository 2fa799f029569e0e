//! `mlv report`: the audit page. One self-contained HTML file (inline CSS and JS, no network)
//! showing the model registry, each model version's lineage graph and metric history.
//!
//! The data is embedded once, as JSON in a `<script type="application/json">` element with
//! every `<`, `>` and `&` written as a `\u00XX` escape, so no string can end the element; the
//! page's own script shows every string through `textContent` and SVG text nodes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::Error;
use crate::lineage::sign::{allowed_signers, check, SigState};
use crate::lineage::time::rfc3339_millis;
use crate::lineage::traverse::{upstream, Node};
use crate::lineage::{Artifact, Author, Lineage, Record};
use crate::ops::model::{load, ModelInfo, StageEvent, VersionInfo};
use crate::repo::Repo;

/// The page's script, style and skeleton; `@@DATA@@` is replaced by the escaped JSON.
const TEMPLATE: &str = include_str!("report/page.html");

/// The format of the embedded data (`report.format`).
pub const FORMAT: u32 = 1;

/// Everything the page shows (embedded as JSON).
#[derive(Debug, Serialize)]
pub struct ReportData {
    /// The data format, [`FORMAT`].
    pub format: u32,
    /// When the page was made, RFC 3339 UTC.
    pub generated_at: String,
    /// The commit checked out when it was made (`None` before the first commit).
    pub head: Option<String>,
    /// The allowed signers file the signatures were checked against (git's
    /// `gpg.ssh.allowedSignersFile`); `None`: not set, signatures shown as `signed` unchecked.
    pub allowed_signers: Option<String>,
    /// The models, by name.
    pub models: Vec<ModelData>,
    /// Every lineage record some version's graph reaches, by id.
    pub records: BTreeMap<String, RunData>,
}

/// One model.
#[derive(Debug, Serialize)]
pub struct ModelData {
    /// Its name.
    pub name: String,
    /// The latest version.
    pub latest: Option<String>,
    /// Stage -> version, now.
    pub stages: BTreeMap<String, String>,
    /// Deprecated (a GTO `deprecate` tag).
    pub deprecated: bool,
    /// Its stage history, oldest first.
    pub history: Vec<StageEvent>,
    /// Problems found reading its tags.
    pub problems: Vec<String>,
    /// Its versions, oldest first.
    pub versions: Vec<VersionData>,
}

/// One version of a model.
#[derive(Debug, Serialize)]
pub struct VersionData {
    /// The registry's view of it (tag, commit, who, when, path, digest, ...).
    #[serde(flatten)]
    pub info: VersionInfo,
    /// The stages it is in now.
    pub stages: Vec<String>,
    /// The id of the record that produced it (the root of its lineage graph).
    pub run: Option<String>,
    /// That record's metrics.
    pub metrics: BTreeMap<String, serde_json::Number>,
}

/// A lineage record as the page shows it.
#[derive(Debug, Serialize)]
pub struct RunData {
    /// The record id.
    pub id: String,
    /// When it was recorded.
    pub time: String,
    /// Who recorded it.
    pub author: Option<Author>,
    /// The commit checked out.
    pub commit: Option<String>,
    /// The work tree differed from that commit.
    pub dirty: bool,
    /// The command run.
    pub command: Option<Vec<String>>,
    /// The pipeline stage.
    pub stage: Option<String>,
    /// What it read, each with the record that produced that version (if one did).
    pub inputs: Vec<InputData>,
    /// What it wrote.
    pub outputs: Vec<Artifact>,
    /// Parameters.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Metrics.
    pub metrics: BTreeMap<String, serde_json::Number>,
    /// `unsigned`; `good`, `bad` or `unknown_key` as `mlv lineage verify --signatures` says
    /// when git's allowed signers file is set; else `signed` (not checked).
    pub signature: &'static str,
}

/// One input of a run.
#[derive(Debug, Serialize)]
pub struct InputData {
    /// The input.
    #[serde(flatten)]
    pub artifact: Artifact,
    /// The id of the record that produced this version of it.
    pub produced_by: Option<String>,
}

/// Gathers the registry and lineage of `repo`.
pub fn collect(repo: &Repo) -> Result<ReportData, Error> {
    let reg = load(repo)?;
    let lineage = Lineage::load(&repo.root)?;
    // signatures are checked when git says whom to trust, as `lineage verify --signatures` does
    let allowed = allowed_signers(&repo.git).ok();
    let mut records = BTreeMap::new();
    let models = reg
        .models
        .iter()
        .map(|m| model_data(m, &lineage, allowed.as_deref(), &mut records))
        .collect::<Result<_, Error>>()?;
    let head = crate::history::head_commit(&repo.git).map(|c| c.id().to_string());
    Ok(ReportData {
        format: FORMAT,
        generated_at: rfc3339_millis(SystemTime::now()),
        head,
        allowed_signers: allowed.map(|p| p.display().to_string()),
        models,
        records,
    })
}

fn model_data(
    m: &ModelInfo,
    lineage: &Lineage,
    allowed: Option<&Path>,
    records: &mut BTreeMap<String, RunData>,
) -> Result<ModelData, Error> {
    let versions = m
        .versions
        .iter()
        .map(|v| {
            let node = match (&v.digest, v.problems.is_empty()) {
                (Some(d), true) => upstream(lineage, d, v.path.as_deref()),
                _ => None,
            };
            let run = node.as_ref().map(|n| n.record.id.clone());
            let metrics = node
                .as_ref()
                .map(|n| n.record.metrics.clone())
                .unwrap_or_default();
            if let Some(n) = &node {
                add_runs(n, allowed, records)?;
            }
            Ok(VersionData {
                info: v.clone(),
                stages: m
                    .stages
                    .iter()
                    .filter(|(_, x)| **x == v.version)
                    .map(|(s, _)| s.clone())
                    .collect(),
                run,
                metrics,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(ModelData {
        name: m.name.clone(),
        latest: m.latest.clone(),
        stages: m.stages.clone(),
        deprecated: m.deprecated,
        history: m.history.clone(),
        problems: m.problems.clone(),
        versions,
    })
}

/// Adds `node`'s record and its upstream records to `records`.
fn add_runs(
    node: &Node,
    allowed: Option<&Path>,
    records: &mut BTreeMap<String, RunData>,
) -> Result<(), Error> {
    for up in &node.inputs {
        if let Some(p) = &up.produced_by {
            add_runs(p, allowed, records)?;
        }
    }
    if records.contains_key(&node.record.id) {
        return Ok(());
    }
    let inputs = node
        .inputs
        .iter()
        .map(|up| InputData {
            artifact: up.input.clone(),
            produced_by: up.produced_by.as_ref().map(|p| p.record.id.clone()),
        })
        .collect();
    let signature = match (&node.record.signature, allowed) {
        (None, _) => "unsigned",
        (Some(_), None) => "signed",
        (Some(_), Some(allowed)) => match check(allowed, &node.record)? {
            SigState::Good => "good",
            SigState::Bad => "bad",
            SigState::UnknownKey => "unknown_key",
            SigState::Unsigned => "unsigned",
        },
    };
    records.insert(node.record.id.clone(), run_data(&node.record, inputs, signature));
    Ok(())
}

fn run_data(r: &Record, inputs: Vec<InputData>, signature: &'static str) -> RunData {
    RunData {
        id: r.id.clone(),
        time: r.time.clone(),
        author: r.author.clone(),
        commit: r.commit.clone(),
        dirty: r.dirty,
        command: r.command.clone(),
        stage: r.stage.clone(),
        inputs,
        outputs: r.outputs.clone(),
        params: r.params.clone(),
        metrics: r.metrics.clone(),
        signature,
    }
}

/// The data as JSON that can sit inside a `<script>` element: `<`, `>`, `&` and the JavaScript
/// line separators are `\u` escapes, so no string in it can end the element or open a comment.
pub fn embeddable_json(data: &ReportData) -> String {
    let json = serde_json::to_string(data).expect("report data serializes");
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The page: the template with the data embedded.
pub fn render(data: &ReportData) -> String {
    TEMPLATE.replacen("@@DATA@@", &embeddable_json(data), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> ReportData {
        ReportData {
            format: FORMAT,
            generated_at: "2026-01-01T00:00:00.000Z".into(),
            head: None,
            allowed_signers: None,
            models: vec![ModelData {
                name: name.into(),
                latest: None,
                stages: BTreeMap::new(),
                deprecated: false,
                history: vec![],
                problems: vec!["</script><script>alert(1)</script> & \u{2028}".into()],
                versions: vec![],
            }],
            records: BTreeMap::new(),
        }
    }

    #[test]
    fn embedded_json_cannot_end_the_script_and_round_trips() {
        let d = data("m");
        let j = embeddable_json(&d);
        assert!(!j.contains('<') && !j.contains('>') && !j.contains('&'), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(
            back["models"][0]["problems"][0],
            "</script><script>alert(1)</script> & \u{2028}"
        );
    }

    #[test]
    fn the_page_holds_the_data_once_and_nothing_else_from_it() {
        let page = render(&data("m"));
        assert_eq!(page.matches("@@DATA@@").count(), 0);
        assert_eq!(page.matches("<script").count(), 2, "the data and the code");
        assert!(!page.contains("alert(1)</script>"));
        for external in ["src=", "<link", "url(", "@import", "fetch(", "XMLHttpRequest"] {
            assert!(!page.contains(external), "no network: {external}");
        }
    }
}
