//! Integration tests of `boxhook-core`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

mod diagnose_props;
mod duplicate_keys;
mod interop;
mod model;
mod model_edges;
mod model_items;
mod model_props;
mod php_json_encode;
mod properties;
mod verify;
