//! Remotes: where `mlv push` sends cache objects and `mlv pull` fetches them from.
//!
//! - [`spec`]: remote URLs and options (`RemoteSpec`);
//! - [`options`]: the typed options of each backend, which keys exist and which are secret
//!   (a [`options::Secret`] never prints its value);
//! - [`store`]: `Remote::open` builds the backend: an object_store client with bounded timeouts
//!   and retries, or a local directory;
//! - `backend`: the narrow interface both implement (head, list, ranged get, put, multipart, delete);
//! - `presence`: `contains`, `missing`, `stat`: HEAD requests or fan-out listings;
//! - `upload`: verified single puts (retried) and multipart uploads, batched local publishing;
//! - `download`: verified downloads into the cache, published in batches or packs;
//! - `foreign`: reading another tool's objects at a remote's location (DVC's, for
//!   `import-dvc`), never writing or deleting them;
//! - `ranged`: large downloads as parallel ranged GETs, hashed in order;
//! - `pool`: `jobs` transfers at a time until the first error, memory budget, batches;
//! - `local`: the local-directory remote's fsync/rename/no-follow copies;
//! - [`maintain`]: sizes and ages of objects, re-reading and deleting them (fsck, gc);
//! - [`redact`]: keeping credentials out of every message;
//! - [`error`]: `RemoteError`, with hints;
//! - [`format2`]: remote format 2's chunker, packs, index segments and config document;
//! - [`packed`]: transfers to and from format 2 remotes (a first upload to an empty location
//!   makes it format 2 unless its `format` option is 1; `mlv remote upgrade` turns a format 1
//!   one): `missing`, `upload`, `download` and `get_stream` dispatch to it when the remote's
//!   `mlv-remote.toml` says format 2.
//!
//! Format 1 layout on every backend: `PREFIX/<first two hex>/<64-hex blake3 digest>`, the
//! object's raw bytes, the same as the local cache (see "Remote layout" in `docs/format.md`).
//! Format 2 adds `mlv-remote.toml`, `packs/` and `index/` beside it (see [`format2`]).

pub mod aws_profile;
mod backend;
pub mod configured;
mod download;
pub mod error;
mod foreign;
pub mod format2;
mod local;
pub mod maintain;
pub mod options;
pub mod packed;
mod pool;
mod presence;
mod ranged;
pub mod redact;
mod scheme;
pub mod spec;
pub mod store;
pub mod stream;
mod upload;

pub use download::DownloadReport;
pub use error::RemoteError;
pub use maintain::{RemoteObject, Reread};
pub use options::{Endpoint, RemoteOptions, Secret};
pub use presence::HEAD_LIMIT;
pub use spec::{
    committed_secret, is_secret, secret_keys, validate_key, validate_option, Location, RemoteSpec, Scheme,
    SpecError,
};
pub use store::{Remote, RemoteSettings};
pub use upload::UploadReport;
