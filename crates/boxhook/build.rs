//! With the `runtime` feature, generates the fixture table of
//! `boxhook::runtime::fixtures` from `crates/boxhook-core/fixtures/**/*.json`,
//! so adding a fixture file needs no edit here: the next build picks it up.
//! Without the feature it does nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The table is `boxhook::runtime::fixtures`: without the feature there is
    // nothing to generate, and no corpus to watch.
    if env::var_os("CARGO_FEATURE_RUNTIME").is_none() {
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let core = manifest.join("..").join("boxhook-core");
    let dir = core.join("fixtures");

    // Watching a missing directory would rerun this script on every build;
    // until the corpus exists, watch the core crate's root so its creation is seen.
    if dir.is_dir() {
        println!("cargo:rerun-if-changed={}", dir.display());
    } else {
        println!("cargo:rerun-if-changed={}", core.display());
    }

    let mut files = Vec::new();
    collect(&dir, &mut files);
    let mut fixtures: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&dir)
                .expect("collected under dir")
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (name, path)
        })
        .collect();
    fixtures.sort();

    let mut out = String::from("&[\n");
    for (name, path) in &fixtures {
        let trigger = fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|value| value.get("trigger")?.as_str().map(str::to_owned));
        let absolute = fs::canonicalize(path).expect("listed file exists");
        writeln!(
            out,
            "    Fixture {{ name: {name:?}, trigger: {trigger:?}, body: include_bytes!({:?}) }},",
            absolute.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("]\n");

    let target = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("fixtures.rs");
    fs::write(target, out).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
}
