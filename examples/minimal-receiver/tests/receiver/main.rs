//! Integration tests of `minimal-receiver`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

mod delivery;
mod limits;
