//! One worker process as the dispatcher sees it: spawn, its three I/O threads, signals.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use vram_orch_protocol::{read_frame, write_frame, FrameError, Request, Response};

use crate::config::PoolConfig;

/// Lines of worker stderr kept for crash reports.
const STDERR_TAIL_LINES: usize = 40;
/// Largest frame a worker may send us (results are small; images only go the other way).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// What a worker's threads report to the dispatcher.
#[derive(Debug)]
pub(crate) enum WorkerEvent {
    Frame(Response),
    /// The worker sent something that is not a frame; it must be killed.
    Garbage(String),
    /// The process ended and was reaped; stdout and stderr are drained.
    Exited {
        status: ExitStatus,
        stderr_tail: String,
    },
}

/// How a worker process ended, as people read it.
pub(crate) fn describe_status(status: &ExitStatus) -> (Option<i32>, Option<i32>, String) {
    match (status.code(), status.signal()) {
        (Some(code), _) => (Some(code), None, format!("exited with code {code}")),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {sig}"));
            (None, Some(sig), format!("was killed by {name}"))
        }
        _ => (None, None, "ended".to_string()),
    }
}

/// Starts workers. The dispatcher knows workers only through this and [`WorkerHandle`], so
/// its state machine can be driven by fake workers in tests.
pub(crate) trait Spawner: Send {
    /// Starts worker `id`; everything it says, and its end, arrive on `events` under `id`.
    /// `gpu` pins it to one GPU (UUID or index); `standby` starts it without sessions.
    fn spawn(
        &mut self,
        id: u64,
        config: &PoolConfig,
        gpu: Option<&str>,
        standby: bool,
        events: Sender<(u64, WorkerEvent)>,
    ) -> std::io::Result<Box<dyn WorkerHandle>>;
}

/// The dispatcher's handle on one running worker.
pub(crate) trait WorkerHandle: Send {
    fn pid(&self) -> u32;
    /// Queues a frame for the worker; false when its stdin is already closed.
    fn send(&self, request: Request, payload: Arc<Vec<u8>>) -> bool;
    /// Closes its stdin: a healthy worker exits on EOF.
    fn close_stdin(&mut self);
    /// Signals the worker's whole process group.
    fn signal(&self, signal: Signal);
    /// Stopped (SIGSTOP, a debugger): it would hold a task until its time limit.
    fn is_stopped(&self) -> bool;
    fn rss_bytes(&self) -> Option<u64>;
}

/// Starts real worker processes (the `vram-orch-worker` executable).
pub(crate) struct ProcessSpawner;

impl Spawner for ProcessSpawner {
    fn spawn(
        &mut self,
        id: u64,
        config: &PoolConfig,
        gpu: Option<&str>,
        standby: bool,
        events: Sender<(u64, WorkerEvent)>,
    ) -> std::io::Result<Box<dyn WorkerHandle>> {
        WorkerProcess::spawn(id, config, gpu, standby, events)
            .map(|w| Box::new(w) as Box<dyn WorkerHandle>)
    }
}

/// Frames on their way to a worker's stdin; closing it closes the stdin (EOF = exit).
pub(crate) struct Requests(Option<Sender<(Request, Arc<Vec<u8>>)>>);

impl Requests {
    pub fn new(tx: Sender<(Request, Arc<Vec<u8>>)>) -> Requests {
        Requests(Some(tx))
    }

    pub fn send(&self, request: Request, payload: Arc<Vec<u8>>) -> bool {
        self.0
            .as_ref()
            .is_some_and(|tx| tx.send((request, payload)).is_ok())
    }

    pub fn close(&mut self) {
        self.0 = None;
    }
}

/// A running worker process: its pid and the channel of its writer thread.
pub(crate) struct WorkerProcess {
    pid: u32,
    requests: Requests,
}

impl WorkerProcess {
    /// Starts a worker in its own process group with a parent-death signal. Must be called
    /// from the long-lived dispatcher thread: PR_SET_PDEATHSIG fires when the *thread* that
    /// forked exits, not only the process.
    ///
    /// `gpu` pins it to one GPU, named by UUID (or index) in CUDA_VISIBLE_DEVICES, so CUDA's
    /// own device order cannot place it elsewhere; it then sees that GPU as cuda:0.
    fn spawn(
        id: u64,
        config: &PoolConfig,
        gpu: Option<&str>,
        standby: bool,
        events: Sender<(u64, WorkerEvent)>,
    ) -> std::io::Result<WorkerProcess> {
        let mut cmd = Command::new(&config.worker_bin);
        cmd.arg("--model-set")
            .arg(&config.model_set)
            .arg("--model-dir")
            .arg(&config.model_dir)
            .arg("--ort-dylib")
            .arg(&config.ort_dylib)
            .arg("--device")
            .arg(if gpu.is_some() { "cuda:0" } else { "cpu" })
            .arg("--threads")
            .arg(config.threads.to_string())
            .arg("--max-frame-bytes")
            .arg(config.max_frame_bytes.to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        // The worker decides whether its sessions use it (CPU ones only).
        if let Some(dir) = &config.graph_cache_dir {
            cmd.arg("--graph-cache").arg(dir);
        }
        if let Some(mb) = config.worker_vram_limit_mb {
            cmd.arg("--vram-limit-mb").arg(mb.to_string());
        }
        if gpu.is_some() {
            cmd.arg("--cudnn-conv-algo").arg(&config.cudnn_conv_algo);
            if !config.cuda_defaults.is_empty() {
                cmd.arg("--cuda-defaults")
                    .arg(config.cuda_defaults.join(","));
            }
        }
        if standby {
            cmd.arg("--standby");
        }
        cmd.env_clear()
            .envs(config.worker_env.iter().map(|(k, v)| (k, v)));
        if let Some(visible) = gpu {
            cmd.env("CUDA_VISIBLE_DEVICES", visible)
                .env("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl and fcntl are async-signal-safe and allocate nothing.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                // A worker gains no privileges (setuid binaries, file capabilities) ...
                nix::sys::prctl::set_no_new_privs().map_err(std::io::Error::from)?;
                // ... and holds none of the service's files or sockets: only its pipes.
                close_inherited_fds();
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let (req_tx, req_rx) = crossbeam_channel::unbounded::<(Request, Arc<Vec<u8>>)>();
        thread::Builder::new()
            .name(format!("vo-worker-{pid}-in"))
            .spawn(move || {
                let mut out = BufWriter::new(stdin);
                for (request, payload) in req_rx {
                    if write_frame(&mut out, &request, &payload).is_err() {
                        break; // the worker is gone; its exit is reported by the reader
                    }
                }
            })?;

        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_thread = {
            let tail = Arc::clone(&tail);
            thread::Builder::new()
                .name(format!("vo-worker-{pid}-log"))
                .spawn(move || forward_stderr(pid, stderr, &tail))?
        };
        thread::Builder::new()
            .name(format!("vo-worker-{pid}-out"))
            .spawn(move || {
                let mut input = BufReader::new(stdout);
                loop {
                    match read_frame::<Response>(&mut input, MAX_RESPONSE_BYTES) {
                        Ok(frame) => {
                            if events.send((id, WorkerEvent::Frame(frame.header))).is_err() {
                                break;
                            }
                        }
                        Err(FrameError::Eof) => break,
                        Err(e) => {
                            let _ = events.send((id, WorkerEvent::Garbage(e.to_string())));
                            break;
                        }
                    }
                }
                drop(input);
                let status = wait_child(&mut child);
                let _ = stderr_thread.join();
                let stderr_tail = tail
                    .lock()
                    .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                let _ = events.send((
                    id,
                    WorkerEvent::Exited {
                        status,
                        stderr_tail,
                    },
                ));
            })?;
        Ok(WorkerProcess {
            pid,
            requests: Requests::new(req_tx),
        })
    }
}

impl WorkerHandle for WorkerProcess {
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
        // ESRCH just means it is already gone.
        let _ = killpg(Pid::from_raw(self.pid as i32), signal);
    }

    fn is_stopped(&self) -> bool {
        crate::procfs::is_stopped(self.pid)
    }

    fn rss_bytes(&self) -> Option<u64> {
        crate::procfs::rss_bytes(self.pid)
    }
}

fn wait_child(child: &mut Child) -> ExitStatus {
    loop {
        match child.wait() {
            Ok(status) => return status,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Cannot happen for our own child; report it as a crash-like end.
            Err(_) => return ExitStatus::from_raw(0x7f00),
        }
    }
}

/// Forwards worker log lines (`LEVEL target: message`) to `log`, keeping a tail.
fn forward_stderr(pid: u32, stderr: ChildStderr, tail: &Mutex<VecDeque<String>>) {
    let reader = BufReader::new(stderr);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line).into_owned();
        let (level, message) = parse_log_line(&line);
        log::log!(target: "vram_orchestrator.worker", level, "[worker {pid}] {message}");
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

/// Splits `LEVEL rest` into a level and the rest; anything else (a raw crash message from
/// a library) is logged as a warning, whole.
pub(crate) fn parse_log_line(line: &str) -> (log::Level, &str) {
    if let Some((head, rest)) = line.split_once(' ') {
        if let Ok(level) = head.parse::<log::Level>() {
            return (level, rest);
        }
    }
    (log::Level::Warn, line)
}

/// Receives worker events as one stream for the dispatcher.
pub(crate) type WorkerEvents = Receiver<(u64, WorkerEvent)>;

/// Marks every fd from 3 up close-on-exec in a child between fork and exec (its stdio is
/// already in place): the service's listening sockets and open files would otherwise stay
/// open in every worker. Marked rather than closed: std's own pipe that reports a failed
/// exec must live until the exec. `close_range(CLOSE_RANGE_CLOEXEC)` (Linux 5.11), else
/// `fcntl` per possible fd.
fn close_inherited_fds() {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: plain syscalls on fds of this (child) process; no memory is touched.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) == 0 {
            return;
        }
        let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(256, 65_536) as i32;
        for fd in 3..max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_keep_their_level() {
        assert_eq!(parse_log_line("INFO worker: ready").0, log::Level::Info);
        assert_eq!(parse_log_line("ERROR x: boom").1, "x: boom");
        let (level, msg) = parse_log_line("Segmentation fault (core dumped)");
        assert_eq!(level, log::Level::Warn);
        assert_eq!(msg, "Segmentation fault (core dumped)");
    }

    #[test]
    fn statuses_read_as_sentences() {
        let (code, sig, text) = describe_status(&ExitStatus::from_raw(3 << 8));
        assert_eq!((code, sig), (Some(3), None));
        assert_eq!(text, "exited with code 3");
        let (code, sig, text) = describe_status(&ExitStatus::from_raw(11));
        assert_eq!((code, sig), (None, Some(11)));
        assert!(text.contains("SIGSEGV"), "{text}");
    }
}
