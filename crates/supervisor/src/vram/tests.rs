//! GPU memory rules against scripted devices: memory over time, other processes arriving
//! and leaving, our workers allocating as they start and run.

use super::*;
use crate::gpu::GpuProcess;

/// (NVML index, total MB, (pid, MB) of each process using it).
type Device = (u32, f64, Vec<(u32, f64)>);

/// A scripted multi-GPU machine.
struct Machine {
    devices: Vec<Device>,
}

impl Machine {
    fn new(totals: &[f64]) -> Machine {
        Machine {
            devices: totals
                .iter()
                .enumerate()
                .map(|(i, t)| (i as u32, *t, Vec::new()))
                .collect(),
        }
    }

    fn set(&mut self, device: u32, pid: u32, mb: f64) {
        let procs = &mut self.devices[device as usize].2;
        procs.retain(|(p, _)| *p != pid);
        if mb > 0.0 {
            procs.push((pid, mb));
        }
    }

    fn report(&self) -> GpuReport {
        GpuReport::Available {
            driver_version: "scripted".into(),
            cuda_driver_version: None,
            devices: self
                .devices
                .iter()
                .map(|(index, total, procs)| {
                    let used: f64 = procs.iter().map(|(_, mb)| mb).sum();
                    GpuDevice {
                        index: *index,
                        uuid: format!("GPU-{index}"),
                        name: "Scripted".into(),
                        total_mb: *total,
                        free_mb: total - used,
                        used_mb: used,
                        processes: procs
                            .iter()
                            .map(|(pid, mb)| GpuProcess {
                                pid: *pid,
                                used_mb: Some(*mb),
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }
}

fn policy(devices: &[u32]) -> VramPolicy {
    VramPolicy {
        devices: devices.to_vec(),
        vram_margin_mb: 100.0,
        admission_timeout: Duration::from_secs(5),
        worker_limit_mb: None,
        worker_vram_growth_mb: 300.0,
        peaks_dir: None,
        model_bytes: 16 << 20,
        models: "ppocr-test".into(),
    }
}

const PX: Option<u64> = Some(1_000_000);

/// Teaches the book one peak for PX through a task on a throwaway worker. (Peak keys name
/// the device model, which comes from a reading.)
fn learned(gm: &mut GpuMemory, device: u32, peak: f64) {
    if gm.reading.is_none() {
        gm.on_reading(Instant::now(), Machine::new(&[1.0, 1.0]).report());
    }
    gm.track(999, 9999, device);
    let key = gm.requirement("default", device, PX).0;
    gm.task_started(999, key);
    if let Some(w) = gm.workers.get_mut(&999) {
        w.task.as_mut().unwrap().peak_mb = peak;
    }
    gm.task_finished(999, Instant::now());
    gm.workers.remove(&999);
}

#[test]
fn first_task_uses_the_conservative_estimate_then_the_learned_peak() {
    let m = Machine::new(&[8000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    let t0 = Instant::now();
    gm.on_reading(t0, m.report());
    let (_, first) = gm.requirement("default", 0, PX);
    assert!(first.estimated);
    assert!(first.required_mb > 500.0, "{first:?}");
    learned(&mut gm, 0, 700.0);
    let (_, next) = gm.requirement("default", 0, PX);
    assert!(!next.estimated);
    assert!((next.required_mb - 840.0).abs() < 1e-9, "{next:?}");
}

#[test]
fn spawns_on_the_device_with_most_room_and_reserves_until_the_peak_shows() {
    let mut m = Machine::new(&[4000.0, 4000.0]);
    m.set(0, 50, 2500.0); // someone else on device 0
    let mut gm = GpuMemory::new(policy(&[0, 1]), true);
    learned(&mut gm, 0, 1000.0); // needs 1200 with headroom
    let t = Instant::now();
    gm.on_reading(t, m.report());
    let p = gm.place(t, "default", PX, &[], true);
    let Placement::Spawn { device, need } = p else {
        panic!("{p:?}")
    };
    assert_eq!(device, 1);
    gm.track(1, 101, device);
    gm.reserve_spawn(1, device, need);
    // Room left: device 1 has 4000 - 1200 reserved - 100 margin = 2700, device 0 1400.
    // Reservations count although NVML still shows device 1 entirely free.
    for (worker, expected) in [(2, 1), (3, 1), (4, 0)] {
        let Placement::Spawn { device, need } = gm.place(t, "default", PX, &[], true) else {
            panic!("worker {worker}")
        };
        assert_eq!(device, expected, "worker {worker}");
        gm.track(worker, 100 + worker as u32, device);
        gm.reserve_spawn(worker, device, need);
    }
    assert_eq!(gm.admission.available_mb(1, 4000.0), 300.0);
    m.set(0, 60, 500.0); // another process arrives on device 0
    let t = t + Duration::from_millis(50);
    gm.on_reading(t, m.report());
    // Device 0: 1000 free - 1200 reserved - 100 margin; device 1: 300. Nothing fits.
    assert_eq!(
        gm.place(t, "default", PX, &[], true),
        Placement::Wait {
            required_mb: 1200.0,
            available_mb: 300.0,
            device: 1
        }
    );
    // Worker 1 reaches 1000 MB: NVML's free figure drops and its reservation shrinks by
    // the same amount, so the room left does not change.
    m.set(1, 101, 1000.0);
    let t = t + Duration::from_millis(50);
    gm.on_reading(t, m.report());
    assert_eq!(gm.admission.pending_mb(1), 200.0 + 2400.0);
    assert_eq!(gm.admission.available_mb(1, 3000.0), 300.0);
}

#[test]
fn warm_idle_workers_go_first_and_need_only_the_missing_part() {
    let mut m = Machine::new(&[3000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    learned(&mut gm, 0, 1000.0); // 1200 with headroom
    gm.track(1, 101, 0);
    m.set(0, 101, 900.0); // warm worker holding 900
    m.set(0, 50, 1500.0); // other user: free = 600
    let t = Instant::now();
    gm.on_reading(t, m.report());
    // A fresh worker would need 1200 of 500 available; the warm one needs 300.
    gm.track(2, 102, 0); // a standby, holding nothing
    assert_eq!(
        gm.place(t, "default", PX, &[(2, true), (1, false)], true),
        Placement::Worker(1)
    );
    assert!(gm.holds_reservation(1));
    // The standby alone: needs all 1200 → wait, with the numbers.
    let p = gm.place(t, "default", PX, &[(2, true)], true);
    assert_eq!(
        p,
        Placement::Wait {
            required_mb: 1200.0,
            available_mb: 600.0 - 300.0 - 100.0,
            device: 0
        }
    );
}

#[test]
fn never_admits_past_free_memory_minus_margin_while_workers_ramp_up() {
    let mut m = Machine::new(&[10_000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    learned(&mut gm, 0, 1000.0);
    let mut t = Instant::now();
    let mut spawned = 0u64;
    for step in 0..40u64 {
        gm.on_reading(t, m.report());
        if let Placement::Spawn { device, need } = gm.place(t, "default", PX, &[], true) {
            spawned += 1;
            gm.track(spawned, 100 + spawned as u32, device);
            gm.reserve_spawn(spawned, device, need);
        }
        // Workers allocate slowly: each reaches its 1000 MB three steps after its spawn.
        for w in 1..=spawned {
            let age = step.saturating_sub(w - 1);
            m.set(0, 100 + w as u32, (age as f64 * 400.0).min(1000.0));
        }
        // Reserved-but-unallocated plus allocated never exceeds free - margin.
        let used: f64 = (1..=spawned)
            .map(|w| gm.workers[&w].current_mb)
            .sum::<f64>();
        assert!(gm.admission.pending_mb(0) + used <= 10_000.0 - 100.0 + 1e-9);
        t += Duration::from_millis(50);
    }
    assert_eq!(spawned, 8); // 8 x 1200 = 9600 <= 9900; a 9th would pass the margin
}

#[test]
fn peaks_are_learned_from_samples_and_persist_for_the_next_service() {
    let dir = std::env::temp_dir().join(format!("vo-vram-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut p = policy(&[0]);
    p.peaks_dir = Some(dir.clone());
    let mut m = Machine::new(&[8000.0]);
    let mut gm = GpuMemory::new(p.clone(), true);
    let t = Instant::now();
    gm.on_reading(t, m.report());
    gm.track(1, 101, 0);
    let key = gm.requirement("default", 0, PX).0;
    gm.task_started(1, key.clone());
    for (i, mb) in [300.0, 900.0, 1400.0, 700.0].iter().enumerate() {
        m.set(0, 101, *mb);
        gm.on_reading(t + Duration::from_millis(20 * i as u64), m.report());
    }
    assert_eq!(gm.task_finished(1, t), Some(1400.0));
    gm.finish_saving(t);
    let mut restarted = GpuMemory::new(p, true);
    restarted.on_reading(t, m.report());
    let (_, need) = restarted.requirement("default", 0, PX);
    assert!(!need.estimated);
    assert!((need.required_mb - 1680.0).abs() < 1e-9);
    // A corrupt file is ignored with a warning, never fatal.
    std::fs::write(dir.join("peaks.json"), b"{oops").unwrap();
    let mut fresh = GpuMemory::new(policy_with_dir(&dir), true);
    fresh.on_reading(t, m.report());
    assert!(fresh.requirement("default", 0, PX).1.estimated);
    let _ = std::fs::remove_dir_all(&dir);
}

fn policy_with_dir(dir: &std::path::Path) -> VramPolicy {
    let mut p = policy(&[0]);
    p.peaks_dir = Some(dir.to_path_buf());
    p
}

#[test]
fn workers_that_grow_or_pass_the_limit_are_recycled_between_tasks() {
    let mut m = Machine::new(&[8000.0]);
    let mut p = policy(&[0]);
    p.worker_limit_mb = Some(2000.0);
    let mut gm = GpuMemory::new(p.clone(), true);
    gm.track(1, 101, 0);
    let mut t = Instant::now();
    // One task: a peak of `during` MB, then `after` MB between tasks. Returns the verdict
    // of the first reading after the task.
    let mut run = |gm: &mut GpuMemory, during: f64, after: f64| {
        let key = gm.requirement("default", 0, PX).0;
        gm.task_started(1, key);
        m.set(0, 101, during);
        t += Duration::from_millis(10);
        assert!(
            gm.on_reading(t, m.report()).is_empty(),
            "never during a task"
        );
        gm.task_finished(1, t);
        m.set(0, 101, after);
        t += Duration::from_millis(10);
        gm.on_reading(t, m.report())
    };
    assert!(run(&mut gm, 1500.0, 800.0).is_empty()); // post-warm-up level: 800
    assert!(run(&mut gm, 1900.0, 1050.0).is_empty()); // +250, within the 300 margin
    let verdict = run(&mut gm, 1900.0, 1150.0); // +350: grown
    assert_eq!(verdict.len(), 1);
    assert!(verdict[0].1.contains("grew from 800 MB"), "{verdict:?}");
    let mut gm2 = GpuMemory::new(
        VramPolicy {
            worker_vram_growth_mb: 1e9,
            ..p
        },
        true,
    );
    gm2.track(1, 101, 0);
    let verdict = run(&mut gm2, 2500.0, 2100.0);
    assert!(verdict[0].1.contains("over 2000 MB"), "{verdict:?}");
}

#[test]
fn an_exited_workers_memory_is_waited_for_before_refusing() {
    let mut m = Machine::new(&[2000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    learned(&mut gm, 0, 1000.0);
    gm.track(1, 101, 0);
    m.set(0, 101, 1500.0);
    let t0 = Instant::now();
    gm.on_reading(t0, m.report());
    gm.worker_exited(1, t0);
    // Past the admission timeout, but NVML still lists the exited worker: keep waiting.
    let late = t0 + Duration::from_secs(6);
    gm.on_reading(late, m.report());
    assert!(matches!(
        gm.place(late, "default", PX, &[], true),
        Placement::Wait { .. }
    ));
    assert!(!gm.wait_expired(late, t0, 0));
    // NVML stops listing it: the memory is back and the task fits.
    m.set(0, 101, 0.0);
    gm.on_reading(late, m.report());
    assert!(matches!(
        gm.place(late, "default", PX, &[], true),
        Placement::Spawn { .. }
    ));
    // Had it never come back, the wait is bounded.
    gm.worker_exited(2, late); // untracked: nothing pending
    assert!(gm.wait_expired(late, t0, 0));
}

#[test]
fn refusal_names_the_numbers_and_who_uses_the_device() {
    let mut m = Machine::new(&[4000.0]);
    m.set(0, 4242, 3500.0);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    let t = Instant::now();
    gm.on_reading(t, m.report());
    let Placement::Wait {
        required_mb,
        available_mb,
        device,
    } = gm.place(t, "default", PX, &[], true)
    else {
        panic!()
    };
    assert_eq!(available_mb, 400.0);
    let err = gm.insufficient(required_mb, available_mb, device);
    let TaskError::InsufficientVram {
        required_mb: r,
        available_mb: a,
        device: d,
        message,
    } = err
    else {
        panic!()
    };
    assert_eq!((r, a, d.as_str()), (required_mb, 400.0, "cuda:0"));
    assert!(message.contains("pid 4242"), "{message}");
    assert!(message.contains("3500 MB"), "{message}");
}

#[test]
fn without_per_process_readings_peaks_come_from_the_device_when_alone() {
    let mut m = Machine::new(&[8000.0]);
    m.set(0, 7, 1000.0); // host pid of someone: we cannot tell whose
    let mut gm = GpuMemory::new(policy(&[0]), false);
    let t = Instant::now();
    gm.on_reading(t, m.report());
    gm.track(1, 101, 0);
    let key = gm.requirement("default", 0, PX).0;
    gm.task_started(1, key);
    m.set(0, 55555, 650.0); // our worker, under a host pid
    gm.on_reading(t + Duration::from_millis(20), m.report());
    assert_eq!(gm.task_finished(1, t), Some(650.0));
    assert_eq!(gm.worker_mb(1), None);
}

#[test]
fn pids_nvml_never_lists_switch_to_whole_device_readings() {
    let mut m = Machine::new(&[8000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    let t = Instant::now();
    gm.on_reading(t, m.report());
    gm.track(1, 101, 0);
    for round in 0..2u32 {
        let key = gm.requirement("default", 0, PX).0;
        gm.task_started(1, key);
        // Our worker's memory shows under a pid we do not know (a sandbox's own pids).
        m.set(0, 55555, 700.0);
        gm.on_reading(t + Duration::from_millis(20), m.report());
        let peak = gm.task_finished(1, t + Duration::from_millis(30));
        m.set(0, 55555, 0.0);
        gm.on_reading(t + Duration::from_millis(40), m.report());
        if round == 0 {
            assert_eq!(peak, None, "one task is not proof");
            assert!(gm.snapshot().per_process_readings);
        } else {
            assert_eq!(peak, Some(700.0));
            assert!(!gm.snapshot().per_process_readings);
        }
    }
    assert_eq!(gm.worker_mb(1), None);
}

#[test]
fn a_listed_worker_keeps_per_process_readings() {
    let mut m = Machine::new(&[8000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    let t = Instant::now();
    gm.on_reading(t, m.report());
    gm.track(1, 101, 0);
    for _ in 0..3 {
        let key = gm.requirement("default", 0, PX).0;
        gm.task_started(1, key);
        m.set(0, 101, 700.0);
        m.set(0, 9, 500.0); // someone else arrives meanwhile
        gm.on_reading(t + Duration::from_millis(20), m.report());
        assert_eq!(
            gm.task_finished(1, t + Duration::from_millis(30)),
            Some(700.0)
        );
    }
    assert!(gm.snapshot().per_process_readings);
}

#[test]
fn stale_or_missing_readings() {
    let m = Machine::new(&[8000.0]);
    let mut gm = GpuMemory::new(policy(&[0]), true);
    let t = Instant::now();
    assert_eq!(gm.place(t, "default", PX, &[], true), Placement::Blocked);
    gm.on_reading(t, m.report());
    assert!(matches!(
        gm.place(t, "default", PX, &[], true),
        Placement::Spawn { .. }
    ));
    let later = t + READING_MAX_AGE * 2;
    assert_eq!(
        gm.place(later, "default", PX, &[], true),
        Placement::Blocked
    );
    // NVML gone: nothing to measure against, nothing refused.
    gm.on_reading(
        later,
        GpuReport::Unavailable {
            reason: "NVML: gone".into(),
        },
    );
    assert!(matches!(
        gm.place(later, "default", PX, &[], true),
        Placement::Spawn { .. }
    ));
}
