//! refine-engine's integration tests, one binary for all: keys (golden vectors, invariance,
//! sensitivity), platform matrices' keys, planning, and the operations the CLI calls.

mod keys;
mod ops;
mod plan;
mod platform_keys;
mod simulated;
