//! The remote's config document, `mlv-remote.toml` at the remote's root: which format the
//! remote uses, and for format 2 the chunking and pack parameters every client must use.
//!
//! ```toml
//! format = 2
//!
//! [chunking]
//! algorithm = "fastcdc-v2020"
//! min_size = 65536
//! avg_size = 262144
//! max_size = 1048576
//! threshold = 8388608
//!
//! [packs]
//! target_size = 33554432
//! max_size = 67108864
//! ```
//!
//! A remote without the document is format 1. The `format` key is read first, on its own, so a
//! document from a newer mlv is refused with "unknown format" rather than a confusing error
//! about keys this mlv does not know.

use serde::{Deserialize, Serialize};

use super::chunker::{ChunkParams, DEFAULT_PARAMS};
use super::error::Format2Error;
use super::pack::{MAX_PACK_SIZE, TARGET_PACK_SIZE};

/// The document's key at the remote's root.
pub const CONFIG_KEY: &str = "mlv-remote.toml";
/// The format this module writes.
pub const FORMAT: u32 = 2;

/// Pack sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackParams {
    /// A pack is sealed once its blobs reach this size.
    pub target_size: u64,
    /// No pack is larger.
    pub max_size: u64,
}

/// The parameters of remotes mlv creates.
pub const DEFAULT_PACKS: PackParams = PackParams {
    target_size: TARGET_PACK_SIZE,
    max_size: MAX_PACK_SIZE,
};

/// A format 2 remote's config document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Always [`FORMAT`].
    pub format: u32,
    /// How files are cut into chunks.
    pub chunking: ChunkParams,
    /// How blobs are grouped into packs.
    pub packs: PackParams,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            format: FORMAT,
            chunking: DEFAULT_PARAMS,
            packs: DEFAULT_PACKS,
        }
    }
}

#[derive(Deserialize)]
struct FormatOnly {
    format: Option<toml::Value>,
}

impl RemoteConfig {
    /// Parses and validates a document.
    pub fn parse(bytes: &[u8]) -> Result<RemoteConfig, Format2Error> {
        let bad = |reason: String| Format2Error::BadConfig {
            file: CONFIG_KEY,
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not UTF-8".into()))?;
        let head: FormatOnly = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        match head.format {
            None => return Err(bad("it has no `format` key".into())),
            Some(toml::Value::Integer(2)) => {}
            Some(toml::Value::Integer(n)) if n > 2 => {
                return Err(Format2Error::UnknownFormat { found: n.to_string() })
            }
            Some(other) => return Err(bad(format!("`format = {other}` is not a format this mlv writes"))),
        }
        let config: RemoteConfig = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        config
            .chunking
            .validate()
            .map_err(|r| bad(format!("chunking: {r}")))?;
        let p = config.packs;
        if p.target_size == 0 || p.target_size > p.max_size || p.max_size > MAX_PACK_SIZE {
            return Err(bad(format!(
                "packs: target_size {} and max_size {} must satisfy 0 < target <= max <= {MAX_PACK_SIZE}",
                p.target_size, p.max_size
            )));
        }
        if u64::from(config.chunking.max_size).max(config.chunking.threshold) >= p.max_size / 2 {
            return Err(bad(
                "packs: max_size must be more than twice the largest blob".into()
            ));
        }
        Ok(config)
    }

    /// The document's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        toml::to_string(self)
            .expect("plain fields serialize")
            .into_bytes()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_the_documented_text() {
        let c = RemoteConfig::default();
        let bytes = c.to_bytes();
        assert_eq!(RemoteConfig::parse(&bytes).unwrap(), c);
        let documented = "format = 2\n\n[chunking]\nalgorithm = \"fastcdc-v2020\"\nmin_size = 65536\n\
                          avg_size = 262144\nmax_size = 1048576\nthreshold = 8388608\n\n[packs]\n\
                          target_size = 33554432\nmax_size = 67108864\n";
        assert_eq!(String::from_utf8(bytes).unwrap(), documented);
    }

    #[test]
    fn future_formats_and_bad_documents_are_refused() {
        let future = "format = 3\n[chunking]\nsomething_new = true\n";
        let e = RemoteConfig::parse(future.as_bytes()).unwrap_err();
        assert!(matches!(e, Format2Error::UnknownFormat { .. }), "{e}");
        assert_eq!(e.kind(), crate::kind::ErrorKind::Environment);
        assert!(e.hint().unwrap().contains("upgrade mlv"));
        let good = String::from_utf8(RemoteConfig::default().to_bytes()).unwrap();
        for bad in [
            String::new(),
            "format = \"2\"".to_string(),
            "format = 1".to_string(),
            "format = 2".to_string(),
            good.replace("fastcdc-v2020", "rabin"),
            good.replace("min_size = 65536", "min_size = 65535"),
            good.replace("avg_size = 262144", "avg_size = 1"),
            good.replace("target_size = 33554432", "target_size = 0"),
            good.replace("max_size = 67108864", "max_size = 9999999999"),
            good.replace("[packs]", "extra = 1\n[packs]"),
            "\u{0}\u{ff}".to_string(),
        ] {
            let e = RemoteConfig::parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(e, Format2Error::BadConfig { .. }), "{bad:?}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        assert!(RemoteConfig::parse(&[0xff, 0xfe]).is_err());
    }
}
