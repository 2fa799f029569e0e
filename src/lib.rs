//! mlv: git-like versioning for datasets and models.
//!
//! The library never prints: every operation returns a report or a typed error, and the
//! `mlv` binary (`src/cli/`) renders them.

pub mod cache;
pub mod child;
pub mod config;
pub mod crash;
pub mod error;
pub mod fs;
pub mod gitutil;
pub mod hash;
pub mod history;
pub mod lineage;
pub mod link;
pub mod lock;
pub mod manifest;
pub mod objects;
pub mod ops;
pub mod pack;
pub mod pointer;
pub mod progress;
pub mod relpath;
pub mod remote;
pub mod repo;
pub mod state;
pub mod targets;
pub mod workspace;

pub use error::{Error, Refusal, Result};
