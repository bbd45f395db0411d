//! Integration tests of `boxhook-testkit`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

mod builders;
mod conformance;
mod simulator;
