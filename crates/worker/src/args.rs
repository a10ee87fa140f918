use std::path::PathBuf;

use vram_orch_ocr::{CudaOptions, Device, ModelSet};

/// Command line of the worker, written by the supervisor (not meant for people, but kept
/// readable in `ps`).
#[derive(Debug, Clone)]
pub struct Args {
    /// The models and their settings (`--model-set NAME`; default: the catalogue's).
    pub model_set: ModelSet,
    pub model_dir: PathBuf,
    pub ort_dylib: PathBuf,
    pub device: Device,
    pub threads: usize,
    /// Folder for graph-optimised copies of the models (CPU only).
    pub graph_cache: Option<PathBuf>,
    /// CUDA provider options: `--vram-limit-mb` (the arena's ceiling), `--cudnn-conv-algo`,
    /// and `--cuda-defaults a,b` (those left at ONNX Runtime's default, applied last).
    pub cuda: CudaOptions,
    pub max_frame_bytes: usize,
    /// The supervisor's pid: if our parent is already someone else, it died before we ran.
    pub parent_pid: Option<u32>,
    /// Load ONNX Runtime, the CUDA provider libraries and the model bytes, but create the
    /// sessions (CUDA context, VRAM) only on the first OCR task.
    pub standby: bool,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut model_dir = None;
        let mut model_set = None;
        let mut ort_dylib = None;
        let mut device = Device::Cpu;
        let mut threads = 0;
        let mut graph_cache = None;
        let mut cuda = CudaOptions::default();
        let mut cuda_defaults = Vec::new();
        let mut max_frame_bytes = vram_orch_protocol::DEFAULT_MAX_FRAME_BYTES;
        let mut parent_pid = None;
        let mut standby = false;
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model-dir" => model_dir = Some(PathBuf::from(value()?)),
                "--model-set" => {
                    model_set = Some(ModelSet::named(&value()?).map_err(|e| e.to_string())?)
                }
                "--ort-dylib" => ort_dylib = Some(PathBuf::from(value()?)),
                "--device" => device = parse_device(&value()?)?,
                "--threads" => threads = parse_num(&flag, &value()?)?,
                "--vram-limit-mb" => cuda.mem_limit_mb = Some(parse_num(&flag, &value()?)?),
                "--graph-cache" => graph_cache = Some(PathBuf::from(value()?)),
                "--cudnn-conv-algo" => cuda.conv_algo = Some(value()?.parse()?),
                "--cuda-defaults" => cuda_defaults.extend(
                    value()?
                        .split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                ),
                "--max-frame-bytes" => max_frame_bytes = parse_num(&flag, &value()?)?,
                "--parent-pid" => parent_pid = Some(parse_num(&flag, &value()?)?),
                "--standby" => standby = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let model_set = match model_set {
            Some(set) => set,
            None => ModelSet::named(ModelSet::default_name()).map_err(|e| e.to_string())?,
        };
        Ok(Args {
            model_set,
            model_dir: model_dir.ok_or("--model-dir is required")?,
            ort_dylib: ort_dylib.ok_or("--ort-dylib is required")?,
            device,
            threads,
            graph_cache,
            cuda: cuda.with_onnxruntime_defaults(&cuda_defaults)?,
            max_frame_bytes,
            parent_pid,
            standby,
        })
    }
}

/// `cpu` or `cuda:N` (the supervisor resolves `auto` and bare `cuda` before spawning).
pub fn parse_device(text: &str) -> Result<Device, String> {
    match text {
        "cpu" => Ok(Device::Cpu),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("--device {text:?}: expected cpu or cuda:N")),
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} {text:?}: expected a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vram_orch_ocr::ConvAlgo;

    fn parse(list: &[&str]) -> Result<Args, String> {
        Args::parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn full_command_line() {
        let args = parse(&[
            "--model-set",
            "ppocr-v4",
            "--model-dir",
            "/m",
            "--ort-dylib",
            "/l.so",
            "--device",
            "cuda:1",
            "--threads",
            "2",
            "--vram-limit-mb",
            "900",
            "--graph-cache",
            "/c",
            "--cudnn-conv-algo",
            "exhaustive",
            "--parent-pid",
            "42",
        ])
        .unwrap();
        assert_eq!(args.device, Device::Cuda(1));
        assert_eq!(args.model_set.name, "ppocr-v4");
        assert_eq!(args.threads, 2);
        assert_eq!(args.cuda.mem_limit_mb, Some(900));
        assert_eq!(args.graph_cache, Some(PathBuf::from("/c")));
        assert_eq!(args.cuda.conv_algo, Some(ConvAlgo::Exhaustive));
        assert!(args.cuda.arena_same_as_requested && args.cuda.arena_shrink);
        assert_eq!(args.parent_pid, Some(42));
        assert!(!args.standby);
    }

    #[test]
    fn cuda_defaults_leave_options_to_onnxruntime_whatever_the_order() {
        let base = ["--model-dir", "/m", "--ort-dylib", "/l"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        let all = CudaOptions::NAMES.join(",");
        let args = with(&["--cuda-defaults", &all, "--vram-limit-mb", "900"]).unwrap();
        assert_eq!(
            args.cuda,
            CudaOptions {
                arena_same_as_requested: false,
                mem_limit_mb: None,
                conv_algo: None,
                conv_max_workspace: None,
                arena_shrink: false,
            }
        );
        let args = with(&["--cuda-defaults", "gpu_mem_limit", "--vram-limit-mb", "900"]).unwrap();
        assert_eq!(args.cuda.mem_limit_mb, None);
        assert_eq!(args.cuda.conv_algo, Some(ConvAlgo::Heuristic));
        let err = with(&["--cuda-defaults", "arena_extend,gpu_mem_limit"]).unwrap_err();
        assert!(
            err.contains("\"arena_extend\"") && err.contains("arena_extend_strategy"),
            "{err}"
        );
        assert_eq!(
            with(&["--cuda-defaults", ""]).unwrap().cuda,
            CudaOptions::default()
        );
    }

    #[test]
    fn standby_is_a_flag_without_value() {
        let args = parse(&["--standby", "--model-dir", "/m", "--ort-dylib", "/l.so"]).unwrap();
        assert!(args.standby);
        assert_eq!(args.model_dir, PathBuf::from("/m"));
        let args = parse(&["--model-dir", "/m", "--ort-dylib", "/l.so", "--standby"]).unwrap();
        assert!(args.standby);
    }

    #[test]
    fn errors_name_the_flag() {
        assert!(parse(&["--ort-dylib", "/l"])
            .unwrap_err()
            .contains("--model-dir"));
        assert!(
            parse(&["--model-dir", "/m", "--ort-dylib", "/l", "--device", "tpu"])
                .unwrap_err()
                .contains("tpu")
        );
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
        let algo = [
            "--model-dir",
            "/m",
            "--ort-dylib",
            "/l",
            "--cudnn-conv-algo",
            "fast",
        ];
        assert!(parse(&algo).unwrap_err().contains("fast"));
        let set = [
            "--model-dir",
            "/m",
            "--ort-dylib",
            "/l",
            "--model-set",
            "ppocr-v9",
        ];
        assert!(parse(&set).unwrap_err().contains("ppocr-v9"));
        let args = parse(&["--model-dir", "/m", "--ort-dylib", "/l"]).unwrap();
        assert_eq!(args.model_set.name, ModelSet::default_name());
        assert!(parse(&["--model-dir"])
            .unwrap_err()
            .contains("needs a value"));
    }
}
