//! The worker binary end to end in standby mode: hello first, sessions on the first task.
//! Needs the ppocr-v4 models and ONNX Runtime: VRAM_ORCH_MODEL_DIR and VRAM_ORCH_ORT_DYLIB.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use vram_orch_protocol::{
    read_frame, write_frame, Hello, InputKind, OcrOptions, OcrResult, Profile, Request, Response,
    DEFAULT_MAX_FRAME_BYTES,
};

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// A worker on the ppocr-v4 models. Without their folder and ONNX Runtime's path the
    /// test fails (a test that cannot run must not pass): `make test-rust` sets both.
    fn spawn(standby: bool) -> Worker {
        let var = |name: &str| {
            std::env::var_os(name).unwrap_or_else(|| panic!("set {name}, or run `make test-rust`"))
        };
        let (models, dylib) = (var("VRAM_ORCH_MODEL_DIR"), var("VRAM_ORCH_ORT_DYLIB"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vram-orch-worker"));
        cmd.args(["--model-set", "ppocr-v4", "--model-dir"])
            .arg(models)
            .arg("--ort-dylib")
            .arg(dylib)
            .args(["--device", "cpu", "--threads", "1"])
            .env("VRAM_ORCH_WORKER_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if standby {
            cmd.arg("--standby");
        }
        let mut child = cmd.spawn().expect("worker starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn recv(&mut self) -> Response {
        read_frame::<Response>(&mut self.stdout, DEFAULT_MAX_FRAME_BYTES)
            .expect("a frame from the worker")
            .header
    }

    fn hello(&mut self) -> Hello {
        match self.recv() {
            Response::Hello(hello) => hello,
            other => panic!("expected hello, got {other:?}"),
        }
    }

    fn ocr(&mut self, id: u64, image: &str) -> OcrResult {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/ocrset")
            .join(image);
        let request = Request::Ocr {
            id,
            input: InputKind::Path {
                path: path.to_string_lossy().into_owned(),
            },
            options: OcrOptions {
                profile: Profile::Default,
                max_input_bytes: 64 << 20,
                max_pixels: 40_000_000,
                max_det_pixels: 4_000_000,
            },
            analyze: None,
        };
        write_frame(&mut self.stdin, &request, &[]).expect("request sent");
        match self.recv() {
            Response::OcrDone { id: got, result } if got == id => result,
            other => panic!("expected the result of task {id}, got {other:?}"),
        }
    }

    /// Shuts the worker down; returns its stderr.
    fn finish(mut self) -> String {
        write_frame(&mut self.stdin, &Request::Shutdown, &[]).expect("shutdown sent");
        self.stdin.flush().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "worker exit: {status}; stderr:\n{stderr}");
        stderr
    }
}

fn text(result: &OcrResult) -> String {
    let lines: Vec<&str> = result.lines.iter().map(|l| l.text.as_str()).collect();
    lines.join("\n")
}

#[test]
fn standby_worker_activates_on_its_first_task() {
    let mut worker = Worker::spawn(true);
    let hello = worker.hello();
    assert!(hello.standby, "{hello:?}");
    assert_eq!(hello.device, "cpu");
    let set = vram_orch_ocr::ModelSet::named("ppocr-v4").unwrap();
    assert_eq!(hello.models, set.file_names());

    let first = worker.ocr(1, "01_line_short.png");
    assert!(!text(&first).is_empty(), "{first:?}");
    let t = first.timings;
    assert!(t.activate_ms > 0.0, "{t:?}");
    assert!(t.total_ms >= t.activate_ms + t.model_ms, "{t:?}");

    let second = worker.ocr(2, "01_line_short.png");
    assert_eq!(second.timings.activate_ms, 0.0, "{:?}", second.timings);
    assert_eq!(second.lines, first.lines);

    let stderr = worker.finish();
    assert!(stderr.contains("standby on cpu in "), "{stderr}");
    assert_eq!(stderr.matches("activated in ").count(), 1, "{stderr}");
}

#[test]
fn normal_worker_matches_standby_and_never_activates() {
    let (mut normal, mut standby) = (Worker::spawn(false), Worker::spawn(true));
    let (a, b) = (normal.hello(), standby.hello());
    assert!(!a.standby && b.standby);
    assert_eq!(
        (&a.device, &a.models, &a.providers_available, &a.ort_version),
        (&b.device, &b.models, &b.providers_available, &b.ort_version)
    );
    for (id, image) in [(1, "13_page_paragraph.png"), (2, "02_line_pangram.png")] {
        let r = normal.ocr(id, image);
        assert_eq!(r.timings.activate_ms, 0.0, "{image}");
        assert_eq!(r.lines, standby.ocr(id, image).lines, "{image}");
    }
    assert!(!normal.finish().contains("activated in "));
    standby.finish();
}
