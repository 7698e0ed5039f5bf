//! The keys each section of a plan accepts, as the decoder reads them. The plan's JSON Schema
//! (`schemas/plan.schema.json`, from [`crate::plan::file`]) lists the same keys; a test below
//! fails when the two drift apart.

pub(super) const TOP_KEYS: &[&str] = &[
    "name",
    "scope",
    "output-root",
    "state-root",
    "time-zone",
    "end",
    "reference-snapshot",
    "universe",
    "batching",
    "gateway",
    "limits",
    "phase",
];
pub(super) const UNIVERSE_KEYS: &[&str] = &[
    "symbols",
    "symbols-file",
    "indices",
    "contracts-cache",
    "on-missing-cache",
];
pub(super) const BATCHING_KEYS: &[&str] = &["batch-count", "batch-index"];
pub(super) const GATEWAY_KEYS: &[&str] = &[
    "host",
    "port",
    "client-id",
    "connect-timeout",
    "request-timeout",
    "max-in-flight",
    "reconnect-for",
    "max-attempts",
];
pub(super) const PHASE_KEYS: &[&str] = &[
    "name",
    "what-to-show",
    "use-rth",
    "bars",
    "select",
    "depends-on",
];
pub(super) const CELL_KEYS: &[&str] = &["size", "duration"];
pub(super) const SELECT_KEYS: &[&str] = &["near-atm"];
pub(super) const NEAR_ATM_KEYS: &[&str] = &["strikes", "expiries", "reference"];
