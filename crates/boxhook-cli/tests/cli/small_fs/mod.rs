//! A small or read-only filesystem for a test, and directory snapshots:
//! the test kit's, named here for the CLI tests that use them.

#![allow(unused_imports, unreachable_pub)] // Reason: each test file uses a subset.

pub use boxhook_testkit::fs::{
    as_unprivileged, is_root, on_small_fs, remount_read_only, skip_unless_required, snapshot,
    TempDir,
};
