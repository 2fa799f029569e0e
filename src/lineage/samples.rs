//! Small lineages for the unit tests of the queries.

use std::collections::BTreeMap;

use super::{Artifact, ArtifactKind, Lineage, Record};
use crate::hash::Digest;

/// A file artifact at `path` whose content is `tag`.
pub fn art(path: &str, tag: &str) -> Artifact {
    Artifact {
        path: path.into(),
        kind: ArtifactKind::File,
        digest: Digest::of_bytes(tag.as_bytes()),
        size: 1,
        files: None,
    }
}

/// A record with one metric, `auc`.
pub fn rec(time: &str, inputs: Vec<Artifact>, outputs: Vec<Artifact>, auc: f64) -> Record {
    let mut r = Record {
        version: 1,
        id: String::new(),
        time: time.into(),
        author: None,
        commit: None,
        dirty: false,
        command: None,
        inputs,
        outputs,
        params: BTreeMap::new(),
        metrics: [("auc".to_string(), serde_json::Number::from_f64(auc).unwrap())].into(),
        tags: vec![],
        stage: None,
        metrics_files: vec![],
        params_files: vec![],
        wdir: None,
        metrics_digests: Default::default(),
        reused: None,
        signature: None,
    };
    r.id = r.compute_id();
    r
}

/// `raw -> clean`, then two runs `clean -> m` (auc 0.7, then 0.9).
pub fn two_models() -> Lineage {
    let (raw, clean) = (art("raw", "raw"), art("clean", "clean"));
    Lineage {
        records: vec![
            rec("1", vec![raw], vec![clean.clone()], 0.0),
            rec("2", vec![clean.clone()], vec![art("m", "m1")], 0.7),
            rec("3", vec![clean], vec![art("m", "m2")], 0.9),
        ],
        problems: vec![],
    }
}
