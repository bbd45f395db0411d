//! Integration tests of `boxhook-admin`: one test binary, one module
//! per area, so a cold `cargo test` links one executable instead of one per file.

mod address;
mod api;
mod apply;
mod desired;
mod paging;
mod plan_props;
mod recreate;
