use serde::{Deserialize, Serialize};

/// Supervisor → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Ping {
        id: u64,
    },
    Info {
        id: u64,
    },
    /// OCR one image; the image travels in the frame payload (empty for `Path`). With
    /// `analyze`, the page's layout (and tables) too: the result then carries `layout`.
    Ocr {
        id: u64,
        input: InputKind,
        options: OcrOptions,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        analyze: Option<AnalyzeRequest>,
    },
    /// Finish and exit 0. Closing stdin means the same.
    Shutdown,
}

/// How the payload of an `Ocr` request is to be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputKind {
    /// PNG, JPEG, TIFF, BMP or WebP bytes.
    Encoded,
    /// A file the worker reads itself (no copy through the pipe).
    Path { path: String },
    /// Row-major pixels: 1 (gray), 3 (RGB) or 4 (RGBA) channels.
    Raw {
        width: u32,
        height: u32,
        channels: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Default,
    Reference,
}

/// What a page analysis does beyond OCR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeRequest {
    /// Run table structure on every table region.
    pub tables: bool,
    /// The page's own text (a PDF text layer, in image pixels): used as its lines instead of
    /// OCR when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_cells: Option<Vec<TextCell>>,
}

/// A piece of text the caller already has, with its box (l, t, r, b) in image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextCell {
    pub text: String,
    pub bbox: [f32; 4],
}

/// Per-task settings and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OcrOptions {
    pub profile: Profile,
    pub max_input_bytes: u64,
    pub max_pixels: u64,
    pub max_det_pixels: u64,
}

/// Worker → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// First frame of every worker, once ONNX Runtime and the models are loaded.
    Hello(Hello),
    Pong {
        id: u64,
    },
    Info {
        id: u64,
        tasks_served: u64,
        rss_bytes: u64,
    },
    OcrDone {
        id: u64,
        result: OcrResult,
    },
    /// A request failed (`id` set) or the worker cannot start (`id` absent, then it exits).
    Error {
        id: Option<u64>,
        kind: ErrorKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub pid: u32,
    pub ort_version: String,
    pub providers_available: Vec<String>,
    /// "cpu" or "cuda:N".
    pub device: String,
    pub models: Vec<String>,
    /// Time from exec to ready (ONNX Runtime and models loaded; in standby, the sessions
    /// are not created yet).
    pub load_ms: f64,
    /// Sessions not created yet: no CUDA context and no VRAM until the first OCR task.
    /// Absent from older workers, hence the default.
    #[serde(default)]
    pub standby: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The task's input is unusable; the worker is fine.
    InvalidInput,
    /// ONNX Runtime, the models or the device could not be set up.
    Setup,
    /// A model run failed.
    Inference,
    /// A frame could not be understood.
    Protocol,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrResult {
    pub lines: Vec<Line>,
    pub width: u32,
    pub height: u32,
    /// Clockwise turn of the page's content the worker found and undid (0, 90, 180, 270).
    #[serde(default)]
    pub rotation: u16,
    pub timings: Timings,
    /// The page's regions, for an `analyze` request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<PageLayout>,
}

/// The regions of one page. Every line of the result is in exactly one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageLayout {
    pub regions: Vec<Region>,
    pub layout_ms: f64,
    pub table_ms: f64,
}

/// One layout region; `bbox` is (l, t, r, b) in input pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// text, title, figure, figure_caption, table, table_caption, header, footer, reference,
    /// equation.
    pub label: String,
    /// 0 for a region made of lines that no detected region held.
    pub score: f32,
    pub bbox: [f32; 4],
    /// Indices into the result's `lines`, in reading order within the region.
    pub lines: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
}

/// A table's grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub rows: u32,
    pub cols: u32,
    pub cells: Vec<Cell>,
}

/// One cell; `bbox` is (l, t, r, b) in input pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub row: u32,
    pub col: u32,
    pub row_span: u32,
    pub col_span: u32,
    pub bbox: [f32; 4],
    pub text: String,
}

/// One text line; `bbox` is TL, TR, BR, BL in input pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub text: String,
    pub score: f32,
    pub bbox: [[f32; 2]; 4],
}

/// Milliseconds per stage inside the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode_ms: f64,
    pub det_ms: f64,
    pub cls_ms: f64,
    pub rec_ms: f64,
    pub model_ms: f64,
    /// Creating the sessions of a standby worker: non-zero only for the task that activated
    /// it, and part of `total_ms`.
    #[serde(default)]
    pub activate_ms: f64,
    pub total_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json() {
        let req = Request::Ocr {
            id: 3,
            input: InputKind::Raw {
                width: 2,
                height: 1,
                channels: 3,
            },
            options: OcrOptions {
                profile: Profile::Reference,
                max_input_bytes: 10,
                max_pixels: 10,
                max_det_pixels: 10,
            },
            analyze: None,
        };
        let text = serde_json::to_string(&req).unwrap();
        assert!(text.contains(r#""type":"ocr""#), "{text}");
        assert!(text.contains(r#""profile":"reference""#), "{text}");
        let back: Request = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Request::Ocr { id: 3, .. }));
    }

    fn hello(standby: bool) -> Hello {
        Hello {
            protocol_version: crate::PROTOCOL_VERSION,
            pid: 7,
            ort_version: "1.31.1".into(),
            providers_available: vec!["CPUExecutionProvider".into()],
            device: "cpu".into(),
            models: vec!["det.onnx".into()],
            load_ms: 12.5,
            standby,
        }
    }

    #[test]
    fn hello_round_trips() {
        for standby in [false, true] {
            let text = serde_json::to_string(&Response::Hello(hello(standby))).unwrap();
            assert!(text.contains(&format!(r#""standby":{standby}"#)), "{text}");
            let Response::Hello(back) = serde_json::from_str(&text).unwrap() else {
                panic!("not a hello: {text}");
            };
            assert_eq!(back, hello(standby));
        }
    }

    #[test]
    fn hello_without_standby_is_not_standby() {
        let text = r#"{"type":"hello","protocol_version":1,"pid":7,"ort_version":"1.31.1",
            "providers_available":["CPUExecutionProvider"],"device":"cpu",
            "models":["det.onnx"],"load_ms":12.5}"#;
        let Response::Hello(back) = serde_json::from_str(text).unwrap() else {
            panic!("not a hello");
        };
        assert_eq!(back, hello(false));
    }

    #[test]
    fn timings_round_trip_and_default_activate_ms() {
        let t = Timings {
            decode_ms: 1.0,
            det_ms: 2.0,
            cls_ms: 3.0,
            rec_ms: 4.0,
            model_ms: 8.0,
            activate_ms: 40.0,
            total_ms: 50.0,
        };
        let text = serde_json::to_string(&t).unwrap();
        assert!(text.contains(r#""activate_ms":40.0"#), "{text}");
        assert_eq!(serde_json::from_str::<Timings>(&text).unwrap(), t);
        let old = r#"{"decode_ms":1.0,"det_ms":2.0,"cls_ms":3.0,"rec_ms":4.0,"model_ms":8.0,"total_ms":10.0}"#;
        let back: Timings = serde_json::from_str(old).unwrap();
        assert_eq!(back.activate_ms, 0.0);
        assert_eq!(back.total_ms, 10.0);
    }

    #[test]
    fn analysis_travels_and_ocr_requests_stay_as_they_were() {
        let options = OcrOptions {
            profile: Profile::Default,
            max_input_bytes: 10,
            max_pixels: 10,
            max_det_pixels: 10,
        };
        let plain = Request::Ocr {
            id: 1,
            input: InputKind::Encoded,
            options,
            analyze: None,
        };
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("analyze"), "{text}");
        let req = Request::Ocr {
            id: 2,
            input: InputKind::Encoded,
            options,
            analyze: Some(AnalyzeRequest {
                tables: true,
                text_cells: Some(vec![TextCell {
                    text: "Total".into(),
                    bbox: [1.0, 2.0, 3.0, 4.0],
                }]),
            }),
        };
        let back: Request = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        let Request::Ocr { analyze, .. } = back else {
            panic!("not an OCR request");
        };
        assert_eq!(analyze.unwrap().text_cells.unwrap()[0].text, "Total");

        let result = OcrResult {
            lines: vec![],
            width: 4,
            height: 4,
            rotation: 0,
            timings: Timings::default(),
            layout: Some(PageLayout {
                regions: vec![Region {
                    label: "table".into(),
                    score: 0.9,
                    bbox: [0.0, 0.0, 4.0, 4.0],
                    lines: vec![],
                    table: Some(Table {
                        rows: 1,
                        cols: 2,
                        cells: vec![Cell {
                            row: 0,
                            col: 0,
                            row_span: 1,
                            col_span: 2,
                            bbox: [0.0, 0.0, 4.0, 4.0],
                            text: "Head".into(),
                        }],
                    }),
                }],
                layout_ms: 1.0,
                table_ms: 2.0,
            }),
        };
        let text = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<OcrResult>(&text).unwrap(), result);
    }

    #[test]
    fn unknown_message_type_is_an_error() {
        assert!(serde_json::from_str::<Response>(r#"{"type":"bogus"}"#).is_err());
    }
}
