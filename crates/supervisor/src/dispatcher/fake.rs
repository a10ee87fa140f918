//! Fake workers for the dispatcher's tests: one thread each, speaking to the dispatcher the
//! way a worker process does (hello, answers, exit statuses), and doing what each task's
//! payload asks for, so every path of the state machine can be driven without models.
//!
//! Payloads (UTF-8 text): `ok [ms]` answers after `ms` (default 0); `crash` dies of SIGSEGV;
//! `crash-once` and `garbage-once` crash or send a malformed frame the first time that
//! payload is seen and answer after that; `hang` never answers; `hang-ignore-term` never
//! answers and survives SIGTERM; `invalid` answers with an invalid-input error; `exit` exits
//! 0 without answering.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, Receiver, Sender};
use nix::sys::signal::Signal;
use vram_orch_protocol::{
    ErrorKind, Hello, OcrResult, Request, Response, Timings, PROTOCOL_VERSION,
};

use crate::config::PoolConfig;
use crate::worker::{Requests, Spawner, WorkerEvent, WorkerHandle};

/// How a fake worker starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start {
    /// Says hello after this long.
    Ready(Duration),
    /// Reports a setup error and exits with code 3.
    Fail,
    /// Never says hello (only a signal ends it).
    Silent,
    /// The spawn itself fails (no process).
    SpawnError,
}

/// What the fakes of one pool share with the test: how the next ones start, and what
/// happened to each.
#[derive(Default)]
pub(super) struct Plan {
    /// How the next workers start, in spawn order; `Ready(0)` once empty.
    pub starts: Mutex<VecDeque<Start>>,
    next_pid: AtomicU32,
    /// Control channel of each live fake, by pid.
    controls: Mutex<HashMap<u32, Sender<Signal>>>,
    stopped: Mutex<HashSet<u32>>,
    /// Payloads that already did their one-off fault.
    seen: Mutex<HashSet<Vec<u8>>>,
    /// (pid, task id) of every task a fake received, in order.
    pub received: Mutex<Vec<(u32, u64)>>,
    /// (pid, how it ended) of every fake that ended.
    pub exits: Mutex<Vec<(u32, ExitStatus)>>,
}

impl Plan {
    /// Sends `signal` to fake `pid`, as `kill` would.
    pub fn signal(&self, pid: u32, signal: Signal) {
        if let Some(tx) = self.controls.lock().unwrap().get(&pid) {
            let _ = tx.send(signal);
        }
    }

    pub fn live_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.controls.lock().unwrap().keys().copied().collect();
        pids.sort();
        pids
    }

    pub fn is_stopped(&self, pid: u32) -> bool {
        self.stopped.lock().unwrap().contains(&pid)
    }

    pub fn exit_of(&self, pid: u32) -> Option<ExitStatus> {
        let exits = self.exits.lock().unwrap();
        exits.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s)
    }

    fn first_time(&self, payload: &[u8]) -> bool {
        self.seen.lock().unwrap().insert(payload.to_vec())
    }
}

pub(super) struct FakeSpawner(pub Arc<Plan>);

impl Spawner for FakeSpawner {
    fn spawn(
        &mut self,
        id: u64,
        _config: &PoolConfig,
        _gpu: Option<&str>,
        standby: bool,
        events: Sender<(u64, WorkerEvent)>,
    ) -> std::io::Result<Box<dyn WorkerHandle>> {
        let plan = Arc::clone(&self.0);
        let start = plan
            .starts
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Start::Ready(Duration::ZERO));
        if matches!(start, Start::SpawnError) {
            return Err(std::io::Error::other("no such executable (fake)"));
        }
        let pid = 100_000 + plan.next_pid.fetch_add(1, Ordering::Relaxed);
        let (requests, request_rx) = crossbeam_channel::unbounded();
        let (control, control_rx) = crossbeam_channel::unbounded();
        plan.controls.lock().unwrap().insert(pid, control.clone());
        let fake = Fake {
            id,
            pid,
            events,
            control: control_rx,
            plan: Arc::clone(&plan),
            ignore_term: false,
        };
        std::thread::spawn(move || fake.run(start, standby, request_rx));
        Ok(Box::new(FakeHandle {
            pid,
            requests: Requests::new(requests),
            control,
            plan,
        }))
    }
}

struct FakeHandle {
    pid: u32,
    requests: Requests,
    control: Sender<Signal>,
    plan: Arc<Plan>,
}

impl WorkerHandle for FakeHandle {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn send(&self, request: Request, payload: Arc<Vec<u8>>) -> bool {
        self.requests.send(request, payload)
    }

    fn close_stdin(&mut self) {
        self.requests.close();
    }

    fn signal(&self, signal: Signal) {
        let _ = self.control.send(signal);
    }

    fn is_stopped(&self) -> bool {
        self.plan.stopped.lock().unwrap().contains(&self.pid)
    }

    fn rss_bytes(&self) -> Option<u64> {
        Some(50 << 20)
    }
}

/// The fake's own thread state.
struct Fake {
    id: u64,
    pid: u32,
    events: Sender<(u64, WorkerEvent)>,
    control: Receiver<Signal>,
    plan: Arc<Plan>,
    ignore_term: bool,
}

/// The fake ended with this status.
struct Ended(ExitStatus);

impl Fake {
    fn run(mut self, start: Start, standby: bool, requests: Receiver<(Request, Arc<Vec<u8>>)>) {
        let status = match self.serve(start, standby, &requests) {
            Ok(()) => ExitStatus::from_raw(0),
            Err(Ended(status)) => status,
        };
        self.plan.controls.lock().unwrap().remove(&self.pid);
        self.plan.stopped.lock().unwrap().remove(&self.pid);
        self.plan.exits.lock().unwrap().push((self.pid, status));
        let stderr_tail = format!("fake worker {} ends", self.pid);
        let _ = self.events.send((
            self.id,
            WorkerEvent::Exited {
                status,
                stderr_tail,
            },
        ));
    }

    fn serve(
        &mut self,
        start: Start,
        standby: bool,
        requests: &Receiver<(Request, Arc<Vec<u8>>)>,
    ) -> Result<(), Ended> {
        match start {
            Start::Ready(after) => self.wait(Some(after))?,
            Start::Fail => {
                self.say(Response::Error {
                    id: None,
                    kind: ErrorKind::Setup,
                    message: "the fake cannot load its models".into(),
                });
                return Err(Ended(ExitStatus::from_raw(3 << 8)));
            }
            Start::Silent => self.wait(None)?,
            Start::SpawnError => unreachable!("no thread for a failed spawn"),
        }
        self.say(Response::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: self.pid,
            ort_version: "fake".into(),
            providers_available: Vec::new(),
            device: "cpu".into(),
            models: Vec::new(),
            load_ms: 1.0,
            standby,
        }));
        loop {
            let stopped = self.plan.stopped.lock().unwrap().contains(&self.pid);
            // A stopped process reads nothing until it is continued.
            let input = if stopped { never() } else { requests.clone() };
            select! {
                recv(self.control) -> signal => {
                    if let Ok(signal) = signal {
                        self.on_signal(signal)?;
                    }
                }
                recv(input) -> request => match request {
                    Ok((Request::Ocr { id, .. }, payload)) => self.task(id, &payload)?,
                    Ok(_) => {}
                    Err(_) => return Ok(()), // stdin closed: exit 0
                },
            }
        }
    }

    fn task(&mut self, task_id: u64, payload: &[u8]) -> Result<(), Ended> {
        self.plan.received.lock().unwrap().push((self.pid, task_id));
        let text = String::from_utf8_lossy(payload).into_owned();
        let (verb, arg) = text.split_once(' ').unwrap_or((&text, ""));
        match verb {
            "ok" => {
                let ms = arg.parse().unwrap_or(0);
                self.wait(Some(Duration::from_millis(ms)))?;
                self.answer(task_id);
            }
            "crash" => return Err(crashed()),
            "crash-once" if self.plan.first_time(payload) => return Err(crashed()),
            "garbage-once" if self.plan.first_time(payload) => {
                let _ = self
                    .events
                    .send((self.id, WorkerEvent::Garbage("fake garbage".into())));
                self.wait(None)?;
            }
            "crash-once" | "garbage-once" => self.answer(task_id),
            "hang" => self.wait(None)?,
            "hang-ignore-term" => {
                self.ignore_term = true;
                self.wait(None)?;
            }
            "invalid" => self.say(Response::Error {
                id: Some(task_id),
                kind: ErrorKind::InvalidInput,
                message: "not an image (fake)".into(),
            }),
            "exit" => return Err(Ended(ExitStatus::from_raw(0))),
            other => panic!("fake worker: unknown payload {other:?}"),
        }
        Ok(())
    }

    /// Waits `time` (None: until a signal ends it), handling signals meanwhile.
    fn wait(&mut self, time: Option<Duration>) -> Result<(), Ended> {
        let until = time.map(|t| Instant::now() + t);
        loop {
            let stopped = self.plan.stopped.lock().unwrap().contains(&self.pid);
            let left = match until {
                Some(at) if !stopped => at.saturating_duration_since(Instant::now()),
                _ => Duration::from_secs(3600),
            };
            if !stopped && until.is_some() && left.is_zero() {
                return Ok(());
            }
            select! {
                recv(self.control) -> signal => {
                    if let Ok(signal) = signal {
                        self.on_signal(signal)?;
                    }
                }
                default(left) => {}
            }
        }
    }

    fn on_signal(&mut self, signal: Signal) -> Result<(), Ended> {
        match signal {
            Signal::SIGSTOP => {
                self.plan.stopped.lock().unwrap().insert(self.pid);
            }
            Signal::SIGCONT => {
                self.plan.stopped.lock().unwrap().remove(&self.pid);
            }
            Signal::SIGTERM if self.ignore_term => {}
            // SIGKILL ends even a stopped process; the others wait for SIGCONT in a real
            // one, which no test relies on.
            other => return Err(Ended(ExitStatus::from_raw(other as i32))),
        }
        Ok(())
    }

    fn answer(&self, task_id: u64) {
        self.say(Response::OcrDone {
            id: task_id,
            result: OcrResult {
                lines: Vec::new(),
                width: 1,
                height: 1,
                rotation: 0,
                timings: Timings::default(),
                layout: None,
            },
        });
    }

    fn say(&self, frame: Response) {
        let _ = self.events.send((self.id, WorkerEvent::Frame(frame)));
    }
}

fn crashed() -> Ended {
    Ended(ExitStatus::from_raw(Signal::SIGSEGV as i32))
}

/// A CPU pool's config for fake workers: small, fast limits.
pub(crate) fn config() -> PoolConfig {
    use std::path::PathBuf;
    use vram_orch_protocol::{OcrOptions, Profile};
    PoolConfig {
        worker_bin: PathBuf::from("fake"),
        model_set: "fake".into(),
        model_dir: PathBuf::from("/nonexistent"),
        ort_dylib: PathBuf::from("/nonexistent"),
        device: crate::config::DeviceChoice::Cpu,
        worker_env: vec![],
        max_workers: 2,
        queue_max: 10_000,
        idle_timeout: None,
        task_timeout: Duration::from_secs(30),
        kill_grace: Duration::from_millis(200),
        startup_timeout: Duration::from_secs(30),
        max_tasks_per_worker: 0,
        worker_rss_limit_mb: 0,
        max_retries: 1,
        threads: 1,
        worker_vram_limit_mb: None,
        graph_cache_dir: None,
        cudnn_conv_algo: "heuristic".into(),
        cuda_defaults: Vec::new(),
        gpu: crate::config::GpuConfig {
            source: crate::gpu::GpuSource::Nvml,
            vram_margin_mb: 0.0,
            admission_timeout: Duration::from_secs(1),
            worker_vram_growth_mb: 0.0,
            peaks_dir: None,
        },
        standby: false,
        default_options: OcrOptions {
            profile: Profile::Default,
            max_input_bytes: 1 << 20,
            max_pixels: 1 << 20,
            max_det_pixels: 1 << 20,
        },
        max_frame_bytes: 2 << 20,
    }
}
