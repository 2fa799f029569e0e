//! mlv: git-like versioning for datasets and models.
//!
//! The library never prints: every operation returns a report or a typed error, and the
//! `mlv` binary (`src/cli/`) renders them.

pub mod cache;
pub mod fs;
pub mod hash;
pub mod progress;
pub mod remote;
