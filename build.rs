//! Builds the worker executable and places it inside the Python package.
//!
//! maturin packs only the PyO3 library of this crate, not binaries. The worker is its own
//! Cargo workspace (crates/worker, with the OCR engine), built here with a nested
//! `cargo build --release` and copied to `python/vram_orchestrator/bin/`, which maturin
//! ships as package data. So `pip install .`, `maturin build` and `maturin develop` all
//! produce a package that finds its worker next to its own files.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WORKER: &str = "vram-orch-worker";

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for path in [
        "crates/worker/src",
        "crates/worker/Cargo.toml",
        "crates/ocr/src",
        "crates/ocr/Cargo.toml",
        "crates/protocol/src",
        "crates/protocol/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let installed = root.join("python/vram_orchestrator/bin").join(WORKER);
    // Also rebuild when the shipped copy was removed or replaced.
    println!("cargo:rerun-if-changed={}", installed.display());
    println!("cargo:rerun-if-env-changed=VRAM_ORCH_WORKER_TARGET_DIR");
    println!("cargo:rerun-if-env-changed=VRAM_ORCH_SKIP_WORKER_BUILD");
    if env::var_os("VRAM_ORCH_SKIP_WORKER_BUILD").is_some() {
        // For `cargo check`/`clippy` of the extension alone; never for a package build.
        return;
    }

    let target_dir = env::var_os("VRAM_ORCH_WORKER_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cargo_target_dir().join("worker"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--manifest-path"])
        .arg(root.join("crates/worker/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's settings are for the extension, not the worker (and under
        // `cargo clippy` the wrapper would lint the worker workspace as part of a build).
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("cannot run cargo to build the worker");
    assert!(status.success(), "building the worker failed ({status})");

    let built = target_dir.join("release").join(WORKER);
    copy_if_changed(&built, &installed);
}

/// The target dir of this build: OUT_DIR is `<target>/<profile>/build/<pkg>-<hash>/out`.
fn cargo_target_dir() -> PathBuf {
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    out.ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.join("target"))
}

/// Copies only on change: rewriting the file would re-trigger `rerun-if-changed` forever.
fn copy_if_changed(from: &Path, to: &Path) {
    let new = fs::read(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    if fs::read(to).ok().as_deref() == Some(new.as_slice()) {
        return;
    }
    fs::create_dir_all(to.parent().expect("has a parent")).expect("create the bin folder");
    let tmp = to.with_extension("tmp");
    fs::write(&tmp, &new).expect("write the worker");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod the worker");
    }
    fs::rename(&tmp, to).expect("install the worker");
}
