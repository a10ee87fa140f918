//! GPU memory admission: may a task start on a device now, given what NVML says is free,
//! what this kind of task is known to need, and what tasks already admitted will still take?
//!
//! Pure logic over numbers, so it is tested against scripted devices; the dispatcher feeds
//! it NVML readings. All quantities are MB.

use std::collections::HashMap;
use std::path::Path;

/// What a kind of task needs, learned or estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requirement {
    pub required_mb: f64,
    /// True when no peak was ever measured for this kind (a conservative estimate).
    pub estimated: bool,
}

/// The verdict for one task.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Admit,
    /// Not enough now; ask again when memory may have changed (until the admission timeout).
    Wait {
        required_mb: f64,
        available_mb: f64,
    },
}

/// Reservations of admitted work that has not reached its peak yet. A reservation belongs
/// to a worker (the dispatcher's id): a worker spawned for a task reserves before it has
/// allocated anything, an idle one when it takes a task.
#[derive(Debug, Default)]
pub struct Admission {
    margin_mb: f64,
    /// worker → (device, reserved MB, MB the worker uses so far).
    reservations: HashMap<u64, (u32, f64, f64)>,
}

impl Admission {
    pub fn new(margin_mb: f64) -> Admission {
        Admission {
            margin_mb,
            reservations: HashMap::new(),
        }
    }

    /// Memory that admitted tasks will still take on `device`: each reservation minus what
    /// its worker already uses (that part is already missing from NVML's free figure).
    pub fn pending_mb(&self, device: u32) -> f64 {
        self.reservations
            .values()
            .filter(|(d, _, _)| *d == device)
            .map(|(_, reserved, used)| (reserved - used).max(0.0))
            .sum()
    }

    /// Free memory left for a new task on `device`, given NVML's `free_mb`.
    pub fn available_mb(&self, device: u32, free_mb: f64) -> f64 {
        free_mb - self.pending_mb(device) - self.margin_mb
    }

    /// Admits work for `holder` on `device` (reserving its requirement) or says how short
    /// memory is. `used_mb` is what the holder already uses there: a warm worker only
    /// needs the part of the requirement it does not hold yet.
    pub fn decide(
        &mut self,
        holder: u64,
        device: u32,
        free_mb: f64,
        need: Requirement,
        used_mb: f64,
    ) -> Decision {
        self.reservations.remove(&holder);
        let available = self.available_mb(device, free_mb);
        if need.required_mb - used_mb <= available {
            self.reservations
                .insert(holder, (device, need.required_mb, used_mb));
            Decision::Admit
        } else {
            Decision::Wait {
                required_mb: need.required_mb,
                available_mb: available.max(0.0),
            }
        }
    }

    /// `holder` now uses `used_mb` (NVML, per process).
    pub fn observe(&mut self, holder: u64, used_mb: f64) {
        if let Some(entry) = self.reservations.get_mut(&holder) {
            entry.2 = entry.2.max(used_mb);
        }
    }

    /// The work ended (or the worker did): its reservation goes.
    pub fn release(&mut self, holder: u64) {
        self.reservations.remove(&holder);
    }

    pub fn holds(&self, holder: u64) -> bool {
        self.reservations.contains_key(&holder)
    }
}

/// Learned peaks per kind of task (model set, profile, device, input-size bucket).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeakBook {
    pub peaks_mb: HashMap<String, f64>,
}

/// CUDA context plus the three sessions' weights and workspace before any measurement: a
/// deliberately high first guess that learning replaces after one task.
pub fn estimate_mb(model_bytes: u64, input_pixels: u64) -> f64 {
    const CUDA_CONTEXT_MB: f64 = 500.0;
    let weights = model_bytes as f64 / 1048576.0;
    // Activations scale with the det input; 4 bytes per channel value, a few buffers deep.
    let activations = input_pixels as f64 * 3.0 * 4.0 * 8.0 / 1048576.0;
    CUDA_CONTEXT_MB + 4.0 * weights + activations
}

/// Input-size bucket of a task: powers of two of megapixels, so similar pages share a peak.
pub fn size_bucket(pixels: u64) -> i32 {
    let mpx = (pixels as f64 / 1e6).max(0.25);
    mpx.log2().ceil() as i32
}

impl PeakBook {
    pub fn key(models: &str, profile: &str, device: &str, pixels: u64) -> String {
        format!("{models}/{profile}/{device}/b{}", size_bucket(pixels))
    }

    /// The requirement of a kind: its learned peak plus `headroom` (a fraction), or the
    /// estimate when none was learned.
    pub fn requirement(&self, key: &str, estimate_mb: f64, headroom: f64) -> Requirement {
        match self.peaks_mb.get(key) {
            Some(peak) => Requirement {
                required_mb: peak * (1.0 + headroom),
                estimated: false,
            },
            None => Requirement {
                required_mb: estimate_mb,
                estimated: true,
            },
        }
    }

    /// Reads a book saved by [`PeakBook::save`]. A missing file is an empty book; an
    /// unreadable or corrupt one too, with the reason to log (it is never fatal).
    pub fn load(path: &Path) -> (PeakBook, Option<String>) {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<PeakBook>(&bytes) {
                Ok(book) => (book, None),
                Err(e) => (
                    PeakBook::default(),
                    Some(format!(
                        "ignoring corrupt VRAM profile {}: {e}",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (PeakBook::default(), None),
            Err(e) => (
                PeakBook::default(),
                Some(format!(
                    "ignoring unreadable VRAM profile {}: {e}",
                    path.display()
                )),
            ),
        }
    }

    /// Merges this book into the file (largest peak per kind wins) and writes it atomically
    /// (temporary file, fsync, rename) under an exclusive lock, so several processes that
    /// share a profile dir never lose each other's peaks or leave a half-written file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use nix::fcntl::{Flock, FlockArg};
        use std::io::Write;

        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("lock"))?;
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| std::io::Error::from(errno))?;
        let (mut merged, _) = PeakBook::load(path);
        for (key, peak) in &self.peaks_mb {
            merged.learn(key, *peak);
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(&merged).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Records a measured peak; keeps the largest seen (peaks only ever matter upwards).
    pub fn learn(&mut self, key: &str, peak_mb: f64) -> bool {
        if !(peak_mb.is_finite() && peak_mb > 0.0) {
            return false;
        }
        let entry = self.peaks_mb.entry(key.to_string()).or_insert(0.0);
        if peak_mb > *entry {
            *entry = peak_mb;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted device: free memory over time, as NVML would report it.
    struct ScriptedDevice {
        total_mb: f64,
        /// (name, MB) of every process using the device.
        users: Vec<(&'static str, f64)>,
    }

    impl ScriptedDevice {
        fn free_mb(&self) -> f64 {
            self.total_mb - self.users.iter().map(|(_, mb)| mb).sum::<f64>()
        }
    }

    fn need(mb: f64) -> Requirement {
        Requirement {
            required_mb: mb,
            estimated: false,
        }
    }

    #[test]
    fn admits_when_memory_fits_and_waits_with_the_right_numbers_when_not() {
        let mut gpu = ScriptedDevice {
            total_mb: 8000.0,
            users: vec![("other service", 6500.0)],
        };
        let mut adm = Admission::new(256.0);
        assert_eq!(
            adm.decide(1, 0, gpu.free_mb(), need(1000.0), 0.0),
            Decision::Admit
        );
        // Task 1 reserved 1000 and has not allocated yet: only 1500 - 1000 - 256 remain.
        assert_eq!(
            adm.decide(2, 0, gpu.free_mb(), need(1000.0), 0.0),
            Decision::Wait {
                required_mb: 1000.0,
                available_mb: 244.0
            }
        );
        // Task 1's worker reaches its peak: NVML's free figure drops, the pending part too.
        gpu.users.push(("worker 1", 1000.0));
        adm.observe(1, 1000.0);
        assert_eq!(adm.pending_mb(0), 0.0);
        assert_eq!(adm.available_mb(0, gpu.free_mb()), 244.0);
        // Another process arrives and takes memory: still waiting, with the new numbers.
        gpu.users.push(("arrival", 200.0));
        assert_eq!(
            adm.decide(2, 0, gpu.free_mb(), need(1000.0), 0.0),
            Decision::Wait {
                required_mb: 1000.0,
                available_mb: 44.0
            }
        );
        // Both leave: task 2 fits.
        gpu.users
            .retain(|(name, _)| !matches!(*name, "worker 1" | "arrival"));
        adm.release(1);
        assert_eq!(
            adm.decide(2, 0, gpu.free_mb(), need(1000.0), 0.0),
            Decision::Admit
        );
    }

    #[test]
    fn never_admits_past_free_memory_minus_margin() {
        let mut adm = Admission::new(100.0);
        let mut free = 5000.0;
        let mut admitted = 0.0;
        for task in 0..100 {
            let before = adm.available_mb(0, free);
            if adm.decide(task, 0, free, need(300.0), 0.0) == Decision::Admit {
                assert!(
                    300.0 <= before,
                    "admitted {task} with {before} MB available"
                );
                admitted += 300.0;
                // Half of the reservations materialise at once, the rest later.
                if task % 2 == 0 {
                    free -= 300.0;
                    adm.observe(task, 300.0);
                }
            }
            assert!(admitted <= 5000.0 - 100.0, "over-committed: {admitted} MB");
        }
        assert_eq!(admitted, 4800.0);
    }

    #[test]
    fn a_warm_worker_needs_only_what_it_does_not_hold() {
        let mut adm = Admission::new(100.0);
        // 700 free; a fresh worker needing 1000 must wait, a warm one holding 800 fits.
        assert!(matches!(
            adm.decide(1, 0, 700.0, need(1000.0), 0.0),
            Decision::Wait { .. }
        ));
        assert_eq!(
            adm.decide(2, 0, 700.0, need(1000.0), 800.0),
            Decision::Admit
        );
        assert_eq!(adm.pending_mb(0), 200.0);
        // Deciding again for the same worker replaces its reservation, never stacks it.
        assert_eq!(
            adm.decide(2, 0, 700.0, need(1000.0), 800.0),
            Decision::Admit
        );
        assert_eq!(adm.pending_mb(0), 200.0);
        adm.release(2);
        assert!(!adm.holds(2));
    }

    #[test]
    fn reservations_are_per_device() {
        let mut adm = Admission::new(0.0);
        assert_eq!(adm.decide(1, 0, 1000.0, need(900.0), 0.0), Decision::Admit);
        assert_eq!(adm.decide(2, 1, 1000.0, need(900.0), 0.0), Decision::Admit);
        assert!(matches!(
            adm.decide(3, 0, 1000.0, need(900.0), 0.0),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn learned_peaks_replace_the_estimate_and_only_grow() {
        let mut book = PeakBook::default();
        let key = PeakBook::key("ppocrv4", "default", "cuda:0", 1_400_000);
        let first = book.requirement(&key, 2000.0, 0.2);
        assert!(first.estimated && first.required_mb == 2000.0);
        assert!(book.learn(&key, 700.0));
        assert!(!book.learn(&key, 650.0));
        assert!(!book.learn(&key, f64::NAN));
        let learned = book.requirement(&key, 2000.0, 0.2);
        assert!(!learned.estimated && (learned.required_mb - 840.0).abs() < 1e-9);
    }

    #[test]
    fn peaks_persist_merge_across_writers_and_survive_corruption() {
        let dir = std::env::temp_dir().join(format!("vo-peaks-{}", std::process::id()));
        let path = dir.join("peaks.json");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(PeakBook::load(&path), (PeakBook::default(), None));

        let mut a = PeakBook::default();
        a.learn("k1", 500.0);
        a.learn("k2", 100.0);
        a.save(&path).unwrap();
        let mut b = PeakBook::default(); // another process that never read the file
        b.learn("k1", 400.0);
        b.learn("k3", 50.0);
        b.save(&path).unwrap();
        let (back, warning) = PeakBook::load(&path);
        assert!(warning.is_none());
        assert_eq!(back.peaks_mb.len(), 3);
        assert_eq!(back.peaks_mb["k1"], 500.0);

        // Concurrent writers: every peak lands.
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut book = PeakBook::default();
                    book.learn(&format!("t{i}"), 10.0 + i as f64);
                    book.save(&path).unwrap();
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(PeakBook::load(&path).0.peaks_mb.len(), 11);

        std::fs::write(&path, b"{not json").unwrap();
        let (book, warning) = PeakBook::load(&path);
        assert!(book.peaks_mb.is_empty() && warning.unwrap().contains("corrupt"));
        a.save(&path).unwrap(); // a corrupt file is replaced, not fatal
        assert_eq!(PeakBook::load(&path).0.peaks_mb["k1"], 500.0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn size_buckets_group_similar_inputs() {
        assert_eq!(size_bucket(1_000_000), size_bucket(900_000));
        assert_ne!(size_bucket(1_000_000), size_bucket(4_000_000));
        assert_eq!(size_bucket(10), size_bucket(100_000));
        assert!(estimate_mb(16_000_000, 4_000_000) > 500.0);
    }
}
