//! Graph-optimised copies of the models, kept on disk for CPU workers.
//!
//! Optimising a graph is most of a session's creation (rec at level ALL: ~90 ms of CPU,
//! against ~55 ms to load a copy saved already optimised; ~80 ms per worker over the three
//! models). With `FREE_VRAM_ON_IDLE` a worker starts after every idle spell, on the path of
//! the first task, so the first worker to optimise a model saves the result and later ones
//! load it with optimisation off. The saved graph computes the same numbers (checked by the
//! parity tests, which run through a cache miss and a hit).
//!
//! Level ALL lays convolutions out for the CPU's vector width, so a saved graph is only
//! valid for the ONNX Runtime version, the level and the CPU it was made with: all three
//! and the model's bytes name the file. CUDA sessions are not cached: their graph also
//! depends on the GPU and the provider.

use std::fs;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

pub(crate) struct GraphCache {
    dir: PathBuf,
    /// Hash of the ONNX Runtime version and the CPU's identity.
    host: Xxh3,
}

/// One model's place in the cache.
pub(crate) struct Entry {
    /// The optimised graph's file.
    pub file: PathBuf,
    /// Where ONNX Runtime writes a new one before it is moved to `file`.
    pub tmp: PathBuf,
    /// The saved graph, when there is one.
    pub saved: Option<Vec<u8>>,
}

impl GraphCache {
    /// The cache in `dir` (created if missing), or `None` when it cannot be used: the
    /// reason goes to the debug log and sessions are optimised as usual.
    pub fn open(dir: &Path, ort_version: &str) -> Option<GraphCache> {
        let Some(cpu) = cpu_identity() else {
            log::debug!("graph cache off: the CPU's identity cannot be read");
            return None;
        };
        if let Err(e) = fs::create_dir_all(dir) {
            log::debug!("graph cache off: cannot create {}: {e}", dir.display());
            return None;
        }
        let mut host = Xxh3::new();
        host.update(ort_version.as_bytes());
        host.update(&[0]);
        host.update(cpu.as_bytes());
        Some(GraphCache {
            dir: dir.to_path_buf(),
            host,
        })
    }

    /// Where the optimised graph of `model` (named `name`, optimised at `level`) lives,
    /// and the graph when it is there.
    pub fn entry(&self, name: &str, model: &[u8], level: &str) -> Entry {
        let mut h = self.host.clone();
        h.update(level.as_bytes());
        h.update(&[0]);
        h.update(model);
        let file = self.dir.join(format!("{name}-{:016x}.onnx", h.digest()));
        Entry {
            tmp: file.with_extension(format!("onnx.{}.tmp", std::process::id())),
            saved: fs::read(&file).ok(),
            file,
        }
    }
}

/// Moves a graph ONNX Runtime has just written into place. Several workers may save the
/// same file at once; each rename is atomic, and they all write the same graph.
pub(crate) fn publish(tmp: &Path, file: &Path) {
    if let Err(e) = fs::rename(tmp, file) {
        log::debug!("cannot keep the optimised graph {}: {e}", file.display());
        let _ = fs::remove_file(tmp);
    }
}

/// Drops a saved graph ONNX Runtime refused, so the next worker saves a good one.
pub(crate) fn discard(file: &Path, why: &dyn std::fmt::Display) {
    log::warn!(
        "ignoring the optimised graph {} ({why}); optimising the model again",
        file.display()
    );
    let _ = fs::remove_file(file);
}

/// The CPU's model and feature flags (what decides the layouts level ALL picks).
fn cpu_identity() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    // x86 names them "model name"/"flags", arm64 "CPU part"/"Features".
    let model = field("model name").or_else(|| field("CPU part"))?;
    let flags = field("flags").or_else(|| field("Features"))?;
    Some(format!("{model}\n{flags}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, version: &str) -> GraphCache {
        GraphCache::open(dir, version).expect("/proc/cpuinfo readable on Linux")
    }

    #[test]
    fn names_depend_on_model_level_and_runtime() {
        let dir = std::env::temp_dir().join(format!("graph-cache-{}", std::process::id()));
        let file = |c: &GraphCache, model: &[u8], level: &str| {
            let e = c.entry("rec", model, level);
            assert!(e.saved.is_none(), "empty cache");
            assert_ne!(e.file, e.tmp);
            assert_eq!(
                e.file.parent(),
                e.tmp.parent(),
                "rename stays on one filesystem"
            );
            e.file
        };
        let a = cache(&dir, "1.31.1");
        let base = file(&a, b"model", "all");
        assert_eq!(base, file(&a, b"model", "all"));
        assert_ne!(base, file(&a, b"model2", "all"));
        assert_ne!(base, file(&a, b"model", "extended"));
        assert_ne!(base, file(&cache(&dir, "1.32.0"), b"model", "all"));

        fs::write(&base, b"graph").unwrap();
        let found = a.entry("rec", b"model", "all");
        assert_eq!(
            (found.file, found.saved),
            (base.clone(), Some(b"graph".to_vec()))
        );
        discard(&base, &"test");
        assert!(!base.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn publish_moves_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("graph-publish-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (tmp, file) = (dir.join("x.tmp"), dir.join("x.onnx"));
        fs::write(&tmp, b"g").unwrap();
        publish(&tmp, &file);
        assert_eq!(fs::read(&file).unwrap(), b"g");
        assert!(!tmp.exists());
        // A target that cannot be written (its folder is gone): the temp file goes too.
        fs::write(&tmp, b"g").unwrap();
        publish(&tmp, &dir.join("missing").join("x.onnx"));
        assert!(!tmp.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
