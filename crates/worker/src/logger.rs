//! A stderr logger whose lines the supervisor parses: `<LEVEL> <target>: <message>`.
//! One line per record (newlines escaped) so a record can never be split or merged.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string().replace('\n', "\\n");
        let line = format!("{} {}: {}\n", record.level(), record.target(), message);
        // One write per line: stderr is unbuffered and lines stay whole.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Level from `VRAM_ORCH_WORKER_LOG` (error|warn|info|debug|trace), default info.
pub fn init() {
    let level = std::env::var("VRAM_ORCH_WORKER_LOG")
        .ok()
        .and_then(|v| v.parse::<Level>().ok())
        .map(|l| l.to_level_filter())
        .unwrap_or(LevelFilter::Info);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
