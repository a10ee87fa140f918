//! The worker's engine: built at start, or in standby only on the first OCR task, so a
//! standby worker holds no CUDA context and no VRAM until it has work.

use std::time::Instant;

use vram_orch_ocr::{Engine, EngineInfo, EngineOptions, OcrError, Standby};

pub struct LazyEngine {
    state: State,
    info: EngineInfo,
}

/// Boxed: the two differ widely in size and the state is moved on activation.
enum State {
    Standby(Box<Standby>),
    Active(Box<Engine>),
    /// Activation failed; the worker exits right after.
    Failed,
}

impl LazyEngine {
    /// Builds the engine, or with `standby` loads everything but its sessions.
    pub fn start(opts: &EngineOptions, standby: bool) -> Result<LazyEngine, OcrError> {
        let state = if standby {
            State::Standby(Box::new(Engine::preload(opts)?))
        } else {
            State::Active(Box::new(Engine::new(opts)?))
        };
        let info = match &state {
            State::Standby(s) => s.info(),
            State::Active(e) => e.info(),
            State::Failed => unreachable!("a new engine has not failed"),
        };
        Ok(LazyEngine { state, info })
    }

    /// The same in both modes.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The engine, activated first when in standby, and the milliseconds that activation
    /// took (0 when it was already active).
    pub fn get(&mut self) -> Result<(&mut Engine, f64), OcrError> {
        let mut activate_ms = 0.0;
        if matches!(self.state, State::Standby(_)) {
            let State::Standby(standby) = std::mem::replace(&mut self.state, State::Failed) else {
                unreachable!("checked above");
            };
            let t = Instant::now();
            self.state = State::Active(Box::new(standby.activate()?));
            activate_ms = t.elapsed().as_secs_f64() * 1e3;
            log::info!("activated in {activate_ms:.0} ms");
        }
        match &mut self.state {
            State::Active(engine) => Ok((engine.as_mut(), activate_ms)),
            _ => Err(OcrError::Setup(
                "the engine failed to activate earlier".into(),
            )),
        }
    }
}
