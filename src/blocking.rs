//! The one way this extension blocks: with the GIL released, looking at signals while it
//! waits.

use std::time::Duration;

use pyo3::prelude::*;

/// How long a wait goes on before it looks at Python's signals (Ctrl-C) again.
pub const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs `step` with the GIL released until it returns `Some`. Each call may wait up to the
/// slice it is given (`SIGNAL_CHECK`); between calls the GIL is taken back to run Python's
/// signal handlers, so Ctrl-C ends the wait with `KeyboardInterrupt` (or whatever the
/// handler raises). Work that does not wait returns `Some` at once: one release, no check.
///
/// Everything heavy or waiting in the extension goes through here, so other Python threads
/// (an asyncio loop) keep running meanwhile.
pub fn blocking<T, F>(py: Python<'_>, mut step: F) -> PyResult<T>
where
    F: FnMut(Duration) -> Option<T> + Send,
    T: Send,
{
    loop {
        if let Some(done) = py.detach(|| step(SIGNAL_CHECK)) {
            return Ok(done);
        }
        py.check_signals()?;
    }
}
