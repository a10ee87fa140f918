//! The dispatcher's state machine driven through the public handle, with fake workers
//! (see `fake`): crash, retry, timeout, idle, standby, drain, cancel and startup paths.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use nix::sys::signal::Signal;
use vram_orch_protocol::InputKind;

use super::fake::{config, FakeSpawner, Plan, Start};
use crate::config::PoolConfig;
use crate::error::TaskError;
use crate::snapshot::PoolSnapshot;
use crate::supervisor::Supervisor;
use crate::task::{Completed, TaskInput, TaskOutcome, TaskSuccess};

const PATIENCE: Duration = Duration::from_secs(10);

struct Pool {
    handle: Supervisor,
    outcomes: Receiver<Completed>,
    /// Outcomes received while waiting for another task's.
    early: RefCell<HashMap<u64, TaskOutcome>>,
    plan: Arc<Plan>,
}

fn pool(config: PoolConfig) -> Pool {
    pool_starting(config, &[])
}

/// A pool whose first workers start as `starts` says.
fn pool_starting(config: PoolConfig, starts: &[Start]) -> Pool {
    let plan = Arc::new(Plan::default());
    plan.starts.lock().unwrap().extend(starts.iter().copied());
    let (tx, outcomes) = crossbeam_channel::unbounded();
    let spawner = Box::new(FakeSpawner(Arc::clone(&plan)));
    let handle = Supervisor::start_with(config, tx, spawner).expect("dispatcher starts");
    Pool {
        handle,
        outcomes,
        early: RefCell::default(),
        plan,
    }
}

fn input(payload: &str) -> TaskInput {
    TaskInput {
        kind: InputKind::Encoded,
        payload: Arc::new(payload.as_bytes().to_vec()),
        analyze: None,
    }
}

impl Pool {
    fn submit(&self, payload: &str) -> u64 {
        self.handle
            .submit(input(payload), None, None, Duration::ZERO)
            .expect("accepted")
    }

    fn submit_within(&self, payload: &str, limit: Duration) -> u64 {
        self.handle
            .submit(input(payload), None, Some(limit), Duration::ZERO)
            .expect("accepted")
    }

    fn outcome(&self, id: u64) -> TaskOutcome {
        if let Some(outcome) = self.early.borrow_mut().remove(&id) {
            return outcome;
        }
        let until = Instant::now() + PATIENCE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let done = self
                .outcomes
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("task {id} did not end"));
            if done.id == id {
                return done.outcome;
            }
            let earlier = self.early.borrow_mut().insert(done.id, done.outcome);
            assert!(earlier.is_none(), "task {} ended twice", done.id);
        }
    }

    fn success(&self, id: u64) -> TaskSuccess {
        match self.outcome(id) {
            Ok(success) => success,
            Err(e) => panic!("task {id} failed: {e:?}"),
        }
    }

    fn snapshot(&self) -> PoolSnapshot {
        self.handle.snapshot().expect("dispatcher answers")
    }

    /// Polls the pool's state until `what` holds.
    fn wait_until(&self, what: &str, holds: impl Fn(&PoolSnapshot) -> bool) -> PoolSnapshot {
        let until = Instant::now() + PATIENCE;
        loop {
            let snap = self.snapshot();
            if holds(&snap) {
                return snap;
            }
            assert!(Instant::now() < until, "never {what}: {snap:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn idle_pids(&self, count: usize) -> Vec<u32> {
        let snap = self.wait_until("idle", |s| {
            s.workers.iter().filter(|w| w.state == "idle").count() == count
        });
        snap.workers.iter().map(|w| w.pid).collect()
    }

    /// Waits until `count` workers have exited for `reason`.
    fn wait_exits(&self, reason: &str, count: u64) {
        self.wait_until(&format!("{count} exits for {reason}"), |s| {
            s.exits_by_reason.get(reason).copied().unwrap_or(0) == count
        });
    }

    /// Nothing is left over: no worker, no task, no second outcome.
    fn close_clean(self) {
        assert!(self.handle.close(false, Some(PATIENCE)), "close timed out");
        assert!(self.plan.live_pids().is_empty(), "fakes left running");
        if let Ok(extra) = self.outcomes.try_recv() {
            panic!("an outcome nobody waited for: {extra:?}");
        }
    }
}

fn crashed_attempts(outcome: TaskOutcome) -> (u32, String) {
    match outcome {
        Err(TaskError::WorkerCrashed {
            attempts, message, ..
        }) => (attempts, message),
        other => panic!("expected WorkerCrashed, got {other:?}"),
    }
}

#[test]
fn a_task_runs_and_its_result_comes_back_once() {
    let p = pool(config());
    let id = p.submit("ok 5");
    let done = p.success(id);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.worker.tasks_served, 1);
    assert_eq!(p.plan.received.lock().unwrap().len(), 1);
    p.close_clean();
}

#[test]
fn a_crash_is_retried_on_a_fresh_worker_not_on_another_warm_one() {
    let p = pool(config());
    p.handle.warm_up(2);
    let warm = p.idle_pids(2);
    let id = p.submit("crash-once");
    let done = p.success(id);
    assert_eq!(done.attempts, 2);
    assert!(
        !warm.contains(&done.worker.pid),
        "the retry went to warm worker {} of {warm:?}",
        done.worker.pid
    );
    assert_eq!(done.worker.tasks_served, 1, "a fresh worker");
    p.wait_exits("crash", 1);
    p.close_clean();
}

#[test]
fn a_retry_with_one_worker_allowed_runs_on_a_new_one() {
    let p = pool(PoolConfig {
        max_workers: 1,
        ..config()
    });
    p.handle.warm_up(1);
    p.idle_pids(1);
    p.success(p.submit("ok"));
    let id = p.submit("crash-once");
    let done = p.success(id);
    assert_eq!(done.attempts, 2);
    assert_eq!(done.worker.tasks_served, 1);
    p.close_clean();
}

#[test]
fn a_task_that_crashes_every_worker_fails_after_max_retries() {
    let p = pool(PoolConfig {
        max_retries: 2,
        ..config()
    });
    let (attempts, message) = crashed_attempts(p.outcome(p.submit("crash")));
    assert_eq!(attempts, 3);
    assert!(message.contains("every one of its 3 attempts"), "{message}");
    assert!(message.contains("SIGSEGV"), "{message}");
    assert!(
        message.contains("fake worker"),
        "the worker's output: {message}"
    );
    // The pool still serves.
    p.success(p.submit("ok"));
    p.wait_exits("crash", 3);
    p.close_clean();
}

#[test]
fn no_retries_with_max_retries_0() {
    let p = pool(PoolConfig {
        max_retries: 0,
        ..config()
    });
    let (attempts, message) = crashed_attempts(p.outcome(p.submit("crash")));
    assert_eq!(attempts, 1);
    assert!(message.contains("VRAM_ORCH_MAX_RETRIES=0"), "{message}");
    p.close_clean();
}

#[test]
fn an_input_that_crashed_a_worker_before_is_not_retried_again() {
    let p = pool(PoolConfig {
        max_retries: 0,
        ..config()
    });
    crashed_attempts(p.outcome(p.submit("crash")));
    drop(p);
    let p = pool(config()); // retries allowed, but a new pool knows nothing
    let (attempts, _) = crashed_attempts(p.outcome(p.submit("crash")));
    assert_eq!(attempts, 2);
    let (attempts, message) = crashed_attempts(p.outcome(p.submit("crash")));
    assert_eq!(attempts, 1, "the same input again: no retry");
    assert!(message.contains("crashed a worker before"), "{message}");
    p.close_clean();
}

#[test]
fn a_malformed_frame_ends_the_worker_and_its_task_is_retried() {
    let p = pool(config());
    let id = p.submit("garbage-once");
    assert_eq!(p.success(id).attempts, 2);
    p.wait_exits("protocol_error", 1);
    p.close_clean();
}

#[test]
fn a_worker_answering_an_error_stays_and_serves_the_next_task() {
    let p = pool(config());
    match p.outcome(p.submit("invalid")) {
        Err(TaskError::InvalidInput { message }) => assert!(message.contains("fake")),
        other => panic!("{other:?}"),
    }
    let done = p.success(p.submit("ok"));
    assert_eq!(done.worker.tasks_served, 2, "the same worker");
    p.close_clean();
}

#[test]
fn a_task_over_its_time_limit_fails_and_its_worker_is_terminated() {
    let p = pool(config());
    let id = p.submit_within("hang", Duration::from_millis(100));
    match p.outcome(id) {
        Err(TaskError::TaskTimeout { limit_s }) => assert!((limit_s - 0.1).abs() < 1e-9),
        other => panic!("{other:?}"),
    }
    p.wait_until("the worker is gone", |s| s.workers.is_empty());
    let pid = p.plan.exits.lock().unwrap()[0].0;
    let status = p.plan.exit_of(pid).unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
    p.wait_exits("timeout", 1);
    p.close_clean();
}

#[test]
fn a_worker_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let p = pool(config()); // kill_grace 200 ms
    let started = Instant::now();
    let id = p.submit_within("hang-ignore-term", Duration::from_millis(50));
    assert!(matches!(p.outcome(id), Err(TaskError::TaskTimeout { .. })));
    p.wait_until("the worker is gone", |s| s.workers.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
    let pid = p.plan.exits.lock().unwrap()[0].0;
    let status = p.plan.exit_of(pid).unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    p.close_clean();
}

#[test]
fn a_worker_exiting_mid_task_is_a_crash_and_the_task_is_retried_once() {
    let p = pool(config());
    let (attempts, message) = crashed_attempts(p.outcome(p.submit("exit")));
    assert_eq!(attempts, 2);
    assert!(message.contains("exited with code 0"), "{message}");
    p.close_clean();
}

#[test]
fn an_idle_worker_exits_after_the_idle_timeout() {
    let p = pool(PoolConfig {
        idle_timeout: Some(Duration::from_millis(150)),
        ..config()
    });
    let first = p.success(p.submit("ok"));
    let snap = p.wait_until("idle release", |s| s.workers.is_empty());
    assert_eq!(snap.exits_by_reason.get("idle"), Some(&1));
    // The next task starts a new worker.
    let second = p.success(p.submit("ok"));
    assert_ne!(first.worker.pid, second.worker.pid);
    p.close_clean();
}

#[test]
fn warm_workers_stay_without_an_idle_timeout() {
    let p = pool(config());
    let first = p.success(p.submit("ok"));
    std::thread::sleep(Duration::from_millis(300));
    let second = p.success(p.submit("ok"));
    assert_eq!(first.worker.pid, second.worker.pid);
    assert_eq!(p.snapshot().spawned, 1);
    p.close_clean();
}

#[test]
fn a_standby_is_kept_while_idle_and_takes_the_next_task() {
    let p = pool(PoolConfig {
        idle_timeout: Some(Duration::from_millis(100)),
        standby: true,
        ..config()
    });
    let snap = p.wait_until("a standby", |s| {
        s.workers.len() == 1 && s.workers[0].standby && s.workers[0].state == "idle"
    });
    let standby = snap.workers[0].pid;
    let done = p.success(p.submit("ok"));
    assert_eq!(done.worker.pid, standby, "the standby took the task");
    // It held memory once it ran a task: idle release ends it, and a new standby follows.
    let snap = p.wait_until("a new standby", |s| {
        s.exits_by_reason.get("idle") == Some(&1)
            && s.workers.len() == 1
            && s.workers[0].standby
            && s.workers[0].pid != standby
    });
    // A standby itself is never released for idleness.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(p.snapshot().workers[0].pid, snap.workers[0].pid);
    p.close_clean();
}

#[test]
fn a_standby_that_fails_to_start_is_not_replaced() {
    let p = pool_starting(
        PoolConfig {
            idle_timeout: Some(Duration::from_millis(100)),
            standby: true,
            ..config()
        },
        &[Start::Fail],
    );
    p.wait_until("the failed standby is gone", |s| {
        s.exits_by_reason.get("startup_failed") == Some(&1) && s.workers.is_empty()
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(p.snapshot().spawned, 1, "no standby after a failed one");
    p.success(p.submit("ok"));
    p.close_clean();
}

#[test]
fn close_drains_queued_tasks_then_ends_the_workers() {
    let p = pool(config());
    let ids: Vec<u64> = (0..5).map(|_| p.submit("ok 20")).collect();
    assert!(p.handle.close(false, Some(PATIENCE)));
    for id in ids {
        p.success(id);
    }
    assert!(p.plan.live_pids().is_empty());
    assert!(p
        .plan
        .exits
        .lock()
        .unwrap()
        .iter()
        .all(|(_, s)| s.code() == Some(0)));
    assert!(matches!(
        p.handle.submit(input("ok"), None, None, Duration::ZERO),
        Err(TaskError::PoolClosed)
    ));
}

#[test]
fn close_with_cancel_fails_pending_tasks_and_kills_the_workers() {
    let p = pool(config());
    let running: Vec<u64> = (0..2).map(|_| p.submit("hang")).collect();
    p.wait_until("both running", |s| s.in_flight == 2);
    let queued = p.submit("ok");
    assert!(p.handle.close(true, Some(PATIENCE)));
    for id in running.into_iter().chain([queued]) {
        assert!(matches!(p.outcome(id), Err(TaskError::PoolClosed)));
    }
    let exits = p.plan.exits.lock().unwrap().clone();
    assert_eq!(exits.len(), 2);
    for (_, status) in exits {
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    }
}

#[test]
fn cancelling_a_queued_task_and_a_running_one() {
    let p = pool(PoolConfig {
        max_workers: 1,
        ..config()
    });
    let running = p.submit("hang");
    p.wait_until("running", |s| s.in_flight == 1);
    let queued = p.submit("ok");
    p.handle.cancel(queued);
    assert!(matches!(p.outcome(queued), Err(TaskError::Cancelled)));
    p.handle.cancel(running);
    assert!(matches!(p.outcome(running), Err(TaskError::Cancelled)));
    let snap = p.wait_until("its worker ended", |s| s.workers.is_empty());
    assert_eq!(snap.exits_by_reason.get("cancel"), Some(&1));
    let (_, status) = p.plan.exits.lock().unwrap()[0];
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    p.success(p.submit("ok"));
    p.close_clean();
}

#[test]
fn a_worker_that_cannot_start_fails_the_queue_with_its_reason() {
    let p = pool_starting(config(), &[Start::Fail, Start::Fail]);
    let ids: Vec<u64> = (0..3).map(|_| p.submit("ok")).collect();
    for id in ids {
        match p.outcome(id) {
            Err(TaskError::Setup { message }) => {
                assert!(message.contains("cannot load its models"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    // Once both failed starts are over, later workers start: the pool serves again.
    p.wait_until("both starts failed", |s| {
        s.exits_by_reason.get("startup_failed") == Some(&2)
    });
    p.success(p.submit("ok"));
    p.close_clean();
}

#[test]
fn a_spawn_error_fails_the_queue_with_the_executable_named() {
    let p = pool_starting(config(), &[Start::SpawnError, Start::SpawnError]);
    match p.outcome(p.submit("ok")) {
        Err(TaskError::Setup { message }) => {
            assert!(
                message.contains("cannot start the worker fake"),
                "{message}"
            );
            assert!(message.contains("no such executable"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    p.close_clean();
}

#[test]
fn a_worker_that_never_says_hello_is_killed_at_the_startup_timeout() {
    let p = pool_starting(
        PoolConfig {
            startup_timeout: Duration::from_millis(100),
            max_workers: 1,
            ..config()
        },
        &[Start::Silent],
    );
    match p.outcome(p.submit("ok")) {
        Err(TaskError::Setup { message }) => {
            assert!(message.contains("not ready after"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    p.wait_until("the silent worker is gone", |s| {
        s.exits_by_reason.get("startup_failed") == Some(&1) && s.workers.is_empty()
    });
    p.close_clean();
}

#[test]
fn a_stopped_idle_worker_is_ended_and_its_task_goes_to_another() {
    let p = pool(PoolConfig {
        max_workers: 1,
        ..config()
    });
    p.handle.warm_up(1);
    let stopped = p.idle_pids(1)[0];
    p.plan.signal(stopped, Signal::SIGSTOP);
    let until = Instant::now() + PATIENCE;
    while !p.plan.is_stopped(stopped) {
        assert!(Instant::now() < until, "the fake never stopped");
        std::thread::sleep(Duration::from_millis(2));
    }
    let done = p.success(p.submit("ok"));
    assert_ne!(done.worker.pid, stopped);
    assert_eq!(done.attempts, 1);
    let status = p.plan.exit_of(stopped).expect("the stopped worker ended");
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    p.close_clean();
}

#[test]
fn a_worker_is_recycled_after_max_tasks_per_worker() {
    let p = pool(PoolConfig {
        max_tasks_per_worker: 2,
        max_workers: 1,
        ..config()
    });
    let pids: Vec<u32> = (0..3)
        .map(|_| p.success(p.submit("ok")).worker.pid)
        .collect();
    assert_eq!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2]);
    p.wait_exits("recycle", 1);
    p.close_clean();
}

#[test]
fn release_idle_ends_idle_workers_only() {
    let p = pool(config());
    let busy = p.submit("ok 300");
    let idle = p.submit("ok");
    p.success(idle);
    p.wait_until("one idle, one busy", |s| {
        s.in_flight == 1 && s.workers.len() == 2
    });
    p.handle.release_idle();
    p.wait_until("the idle one ended", |s| s.workers.len() == 1);
    p.success(busy);
    p.close_clean();
}

/// Many tasks with every kind of fault, cancels and a close: each ends exactly once.
#[test]
fn every_accepted_task_ends_exactly_once_under_mixed_faults() {
    let p = pool(PoolConfig {
        max_workers: 3,
        max_retries: 1,
        idle_timeout: Some(Duration::from_millis(20)),
        ..config()
    });
    let payloads = [
        "ok",
        "ok 3",
        "crash",
        "crash-once",
        "invalid",
        "exit",
        "garbage-once",
        "ok 1",
    ];
    let mut ids = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for n in 0..400 {
        // One-off faults are numbered, so each task does its own.
        let payload = match payloads[(next() % 8) as usize] {
            once @ ("crash-once" | "garbage-once") => format!("{once} {n}"),
            other => other.to_string(),
        };
        let id = if next() % 10 == 0 {
            p.submit_within("hang", Duration::from_millis(30))
        } else {
            p.submit(&payload)
        };
        ids.push(id);
        if next() % 7 == 0 {
            p.handle.cancel(ids[(next() % ids.len() as u64) as usize]);
        }
        if next() % 25 == 0 {
            if let Some(&pid) = p.plan.live_pids().first() {
                p.plan.signal(pid, Signal::SIGKILL);
            }
        }
        if n == 300 {
            p.handle.release_idle();
        }
    }
    assert!(p.handle.close(true, Some(PATIENCE)));
    let mut ended = HashMap::new();
    while let Ok(done) = p.outcomes.recv_timeout(Duration::from_millis(100)) {
        *ended.entry(done.id).or_insert(0) += 1;
    }
    assert_eq!(ended.len(), ids.len(), "every task ended");
    assert!(ended.values().all(|&n| n == 1), "each once");
    assert!(p.plan.live_pids().is_empty());
}

#[test]
fn a_worker_killed_from_outside_while_starting_is_replaced_not_the_queue_failed() {
    // The OOM killer, say, while the worker loads its models.
    let p = pool_starting(
        PoolConfig {
            max_workers: 1,
            ..config()
        },
        &[Start::Silent],
    );
    let ids: Vec<u64> = (0..3).map(|_| p.submit("ok")).collect();
    let snap = p.wait_until("a starting worker", |s| s.workers.len() == 1);
    p.plan.signal(snap.workers[0].pid, Signal::SIGKILL);
    for id in ids {
        assert_eq!(p.success(id).attempts, 1);
    }
    p.wait_exits("crash", 1);
    p.close_clean();
}

#[test]
fn a_worker_stopped_while_starting_is_replaced_at_the_startup_timeout() {
    let p = pool_starting(
        PoolConfig {
            max_workers: 1,
            startup_timeout: Duration::from_millis(100),
            ..config()
        },
        &[Start::Silent],
    );
    p.handle.warm_up(1);
    let snap = p.wait_until("a starting worker", |s| s.workers.len() == 1);
    let stopped = snap.workers[0].pid;
    p.plan.signal(stopped, Signal::SIGSTOP);
    let until = Instant::now() + PATIENCE;
    while !p.plan.is_stopped(stopped) {
        assert!(Instant::now() < until, "the fake never stopped");
        std::thread::sleep(Duration::from_millis(2));
    }
    let id = p.submit("ok");
    assert_ne!(p.success(id).worker.pid, stopped);
    p.close_clean();
}

#[test]
fn starts_killed_again_and_again_fail_the_queue_in_the_end() {
    let p = pool_starting(
        PoolConfig {
            max_workers: 1,
            ..config()
        },
        &[Start::Silent; 5],
    );
    let id = p.submit("ok");
    let mut killed = Vec::new();
    let until = Instant::now() + PATIENCE;
    let outcome = loop {
        if let Ok(done) = p.outcomes.try_recv() {
            assert_eq!(done.id, id);
            break done.outcome;
        }
        for pid in p.plan.live_pids() {
            if !killed.contains(&pid) {
                killed.push(pid);
                p.plan.signal(pid, Signal::SIGKILL);
            }
        }
        assert!(Instant::now() < until, "the task never ended");
        std::thread::sleep(Duration::from_millis(2));
    };
    match outcome {
        Err(TaskError::Setup { message }) => assert!(message.contains("SIGKILL"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(killed.len(), 3, "two replacements, then the queue fails");
    p.close_clean();
}

#[test]
fn an_input_whose_worker_was_killed_from_outside_is_still_retried_next_time() {
    let p = pool(config());
    for _ in 0..2 {
        let id = p.submit("ok 300");
        let snap = p.wait_until("running", |s| s.in_flight == 1);
        let busy = snap.workers.iter().find(|w| w.state == "busy").unwrap().pid;
        p.plan.signal(busy, Signal::SIGKILL);
        assert_eq!(p.success(id).attempts, 2, "retried, the second time too");
    }
    // A crash of its own (SIGSEGV) does mark an input.
    crashed_attempts(p.outcome(p.submit("crash")));
    let (attempts, _) = crashed_attempts(p.outcome(p.submit("crash")));
    assert_eq!(attempts, 1);
    p.close_clean();
}
