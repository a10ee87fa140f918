//! Writes learned VRAM peaks on a thread of its own: [`PeakBook::save`] takes a file lock
//! that another process may hold and fsyncs, neither of which may hold up the dispatcher.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::admission::PeakBook;

const LOG_TARGET: &str = "vram_orchestrator.gpu";

pub(crate) struct PeakWriter {
    path: PathBuf,
    books: Option<Sender<PeakBook>>,
    thread: Option<JoinHandle<()>>,
}

impl PeakWriter {
    /// A writer of `path`; if no thread can be started, books are written by the caller.
    pub fn start(path: PathBuf) -> PeakWriter {
        let (tx, rx) = crossbeam_channel::unbounded::<PeakBook>();
        let file = path.clone();
        let thread = std::thread::Builder::new()
            .name("vo-peaks".to_string())
            .spawn(move || {
                while let Ok(mut book) = rx.recv() {
                    // Only the newest book matters: each holds every peak of the ones before.
                    while let Ok(newer) = rx.try_recv() {
                        book = newer;
                    }
                    write(&book, &file);
                }
            });
        match thread {
            Ok(thread) => PeakWriter {
                path,
                books: Some(tx),
                thread: Some(thread),
            },
            Err(e) => {
                log::warn!(target: LOG_TARGET, "no thread for saving VRAM peaks ({e}): saved inline");
                PeakWriter {
                    path,
                    books: None,
                    thread: None,
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `book` to be merged into the file.
    pub fn write(&self, book: PeakBook) {
        match &self.books {
            Some(tx) if tx.send(book.clone()).is_ok() => {}
            _ => write(&book, &self.path),
        }
    }

    /// Returns once every queued book is on disk.
    pub fn finish(&mut self) {
        self.books = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PeakWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn write(book: &PeakBook, path: &Path) {
    if let Err(e) = book.save(path) {
        log::warn!(
            target: LOG_TARGET,
            "cannot save learned VRAM peaks to {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queued_book_is_on_disk_after_finish() {
        let dir = std::env::temp_dir().join(format!("vo-peak-writer-{}", std::process::id()));
        let path = dir.join("peaks.json");
        let mut writer = PeakWriter::start(path.clone());
        let mut book = PeakBook::default();
        for n in 0..50 {
            book.learn(&format!("k{n}"), 100.0 + n as f64);
            writer.write(book.clone());
        }
        writer.finish();
        assert_eq!(PeakBook::load(&path).0.peaks_mb.len(), 50);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
