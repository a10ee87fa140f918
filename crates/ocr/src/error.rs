use thiserror::Error;

/// Everything the engine can fail with. The worker maps each variant onto a protocol error
/// kind, so the variant decides which Python exception the caller sees.
#[derive(Debug, Error)]
pub enum OcrError {
    /// The input cannot be OCRed (bad bytes, too large, unsupported layout).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// ONNX Runtime, the models or the execution provider could not be set up.
    #[error("setup failed: {0}")]
    Setup(String),
    /// A model run failed after setup succeeded.
    #[error("inference failed: {0}")]
    Inference(String),
}
