//! The integration tests: one binary, one module per area, one harness (`common`) and the
//! storage emulators (`support`). One binary links object_store, reqwest, rustls and git2 once
//! instead of once per area.
//!
//! Tests run in parallel threads of this one process. A test that needs the process to itself
//! (it sets environment variables, or measures the peak memory) runs its body in a fresh child
//! process of this binary: see [`common::isolated`].
//!
//! Run one area with `cargo test --test it cli_gc::`. The crash and lock tests need the
//! `failpoints` feature (`bash tests/run.sh` passes it).

mod common;
mod support;

mod cli_add;
mod cli_checkout;
mod cli_config;
mod cli_doctor;
mod cli_dvc;
mod cli_format2;
mod cli_format2_gc;
mod cli_fsck;
mod cli_gc;
mod cli_history;
mod cli_hooks;
mod cli_hostile;
mod cli_import;
mod cli_import_dvc;
mod cli_import_dvc_pipeline;
mod cli_import_dvc_remote;
mod cli_init;
mod cli_links;
mod cli_metrics;
mod cli_model;
mod cli_model_gto;
mod cli_packs;
mod cli_refusals;
mod cli_registry;
mod cli_remote;
mod cli_report;
mod cli_repro;
mod cli_runcache;
mod cli_status;
mod cli_untrack;
#[cfg(feature = "failpoints")]
mod crash;
mod disk_faults;
mod faults;
mod fuzz_parsers;
mod lineage;
mod lineage_audit;
#[cfg(feature = "failpoints")]
mod lock;
mod quickstart;
mod remote_backends;
mod remote_memory;
mod remote_profile;
mod secrets;
mod snapshots;
