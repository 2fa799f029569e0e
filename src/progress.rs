//! The library's view of progress reporting; the CLI implements it with indicatif.

/// Receives progress from long operations. Implementations must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    /// Starts a phase: `what` names it ("hashing", "uploading"), with totals if known.
    fn start(&self, _what: &str, _items: u64, _bytes: u64) {}
    /// Records work done in the current phase.
    fn advance(&self, _items: u64, _bytes: u64) {}
    /// Ends the current phase.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
