"""The service process never asks for a CUDA device: OCR runs in the workers, and docling's
own models (``VRAM_ORCH_PIPELINE=docling``) run on the CPU.

torch is not installed here, so each check runs in a subprocess with a fake ``torch`` first on
its path: it says CUDA is available (one device) and logs every call that would use CUDA
(``torch.device('cuda')``, ``torch.cuda.*`` beyond the availability queries, ``Tensor.to``
or ``.cuda()`` onto a GPU) to a file.

- ``docling``: its models need real torch and downloaded weights, so the check is made where
  docling picks the device: the options our converter builds, resolved by docling's own
  ``decide_device`` (table model) and its layout engine's ``_resolve_device``. A control
  resolves docling's default options the same way and must get CUDA, so the check can fail.
- ``ocr`` (and further pipelines, through :func:`assert_no_cuda_in_service`): a real
  conversion through ``VramWorkerOrchestrator`` with CPU workers; the service process must map
  no ONNX Runtime or CUDA library and log no CUDA call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The module under test from this tree (loaded into the installed package, whose native
#: extension it needs); the installed copy where the tree has no sources.
PIPELINES = REPO / "python" / "vram_orchestrator" / "docling" / "pipelines"
FULL_PIPELINE_SOURCE = PIPELINES / "docling.py"
FORBIDDEN_IN_SERVICE = ("libonnxruntime", "libcuda", "libcudart", "libcublas", "libcudnn")
IMAGE = Path(__file__).parent / "data" / "ocrset" / "14_block_multiline.png"

FAKE_TORCH = '''
"""Fake torch: CUDA "available" with one device; every call that would use it is logged."""
import json
import os
import sys
import types

__version__ = "0.0.0+fake"
_LOG = os.environ["FAKE_TORCH_LOG"]


def _record(kind, call):
    with open(_LOG, "a") as f:
        f.write(json.dumps({"kind": kind, "call": call}) + "\\n")


def _cuda_like(value):
    if isinstance(value, device):
        return value.type != "cpu"
    if isinstance(value, int) and not isinstance(value, bool):
        return True  # a bare index means a CUDA device
    return isinstance(value, str) and not value.startswith("cpu")


_record("import", "torch")


class device:
    def __init__(self, type, index=None):
        text = str(type) if index is None else f"{type}:{index}"
        self.type, _, idx = text.partition(":")
        self.index = int(idx) if idx else None
        if self.type != "cpu":
            _record("cuda", f"torch.device({text!r})")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    __repr__ = __str__

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


class dtype:
    def __init__(self, name):
        self.name = name


float32, float16, bfloat16 = dtype("float32"), dtype("float16"), dtype("bfloat16")


class Tensor:
    def to(self, *args, **kwargs):
        if any(_cuda_like(a) for a in (*args, kwargs.get("device"))):
            _record("cuda", "Tensor.to")
        return self

    def cuda(self, *args, **kwargs):
        _record("cuda", "Tensor.cuda")
        return self


nn = types.ModuleType("torch.nn")
nn.Module = type("Module", (Tensor,), {})


def set_num_threads(n):
    pass


def get_num_threads():
    return 1


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    _record("missing", f"torch.{name}")
    raise AttributeError(f"fake torch has no {name!r}")


class _Cuda(types.ModuleType):
    """torch.cuda: the availability queries answer; anything else is a CUDA use."""

    def is_available(self):
        # Real torch answers by cudaGetDeviceCount, which initialises the CUDA driver
        # (cuInit: libcuda mapped) unless told to ask NVML instead.
        if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1":
            _record("query", "torch.cuda.is_available")
        else:
            _record("cuda", "torch.cuda.is_available (cuInit)")
        return True

    def device_count(self):
        _record("query", "torch.cuda.device_count")
        return 1

    def is_initialized(self):
        _record("query", "torch.cuda.is_initialized")
        return False

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _record("cuda", f"torch.cuda.{name}")
        return lambda *args, **kwargs: _record("cuda", f"torch.cuda.{name}()")


def _backend(name, built, available):
    module = types.ModuleType(f"torch.backends.{name}")

    def is_built():
        _record("query", f"torch.backends.{name}.is_built")
        return built

    def is_available():
        _record("query", f"torch.backends.{name}.is_available")
        return available

    module.is_built, module.is_available = is_built, is_available
    return module


cuda = _Cuda("torch.cuda")
backends = types.ModuleType("torch.backends")
backends.cuda = _backend("cuda", True, True)
backends.mps = _backend("mps", False, False)
for _name, _module in {
    "torch.cuda": cuda,
    "torch.backends": backends,
    "torch.backends.cuda": backends.cuda,
    "torch.backends.mps": backends.mps,
    "torch.nn": nn,
}.items():
    sys.modules[_name] = _module
'''

#: Resolves the devices of docling's pipeline for the options our converter builds, and
#: (control) for docling's defaults, each phase's fake-torch log kept apart.
DOCLING_DEVICES = """
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
import vram_orchestrator.docling  # the installed package: native extension, pool, plugin

source = Path(sys.argv[1])
if source.is_file():
    name = "vram_orchestrator.docling.pipelines.docling"
    spec = importlib.util.spec_from_file_location(name, source)
    full = importlib.util.module_from_spec(spec)
    sys.modules[name] = full
    spec.loader.exec_module(full)
else:
    from vram_orchestrator.docling.pipelines import docling as full

from docling.datamodel.base_models import InputFormat
from docling.datamodel.pipeline_options import PdfPipelineOptions
from docling.datamodel.service.options import ConvertDocumentsOptions
from docling.models.inference_engines.object_detection.factory import (
    create_object_detection_engine,
)
from docling.utils.accelerator_utils import decide_device

LOG = Path(os.environ["FAKE_TORCH_LOG"])


def calls():
    found = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.exists() else []
    LOG.write_text("")
    return found


def resolve(options):
    layout = options.layout_options
    engine = create_object_detection_engine(
        options=layout.engine_options,
        model_spec=layout.model_spec,
        accelerator_options=options.accelerator_options,
    )
    return {
        "accelerator": str(getattr(options.accelerator_options.device, "value",
                                   options.accelerator_options.device)),
        "table": decide_device(options.accelerator_options.device),
        "layout_engine": str(layout.engine_options.engine_type.value),
        "layout": str(engine._resolve_device()),
        "enrichments": {
            flag: bool(getattr(options, flag))
            for flag in (
                "do_picture_classification",
                "do_picture_description",
                "do_code_enrichment",
                "do_formula_enrichment",
                "do_chart_extraction",
            )
        },
    }


calls()  # importing is not a phase
out = {}


request = ConvertDocumentsOptions(
    do_picture_description=True, do_code_enrichment=True, do_formula_enrichment=True,
    do_picture_classification=True,
)
converter = full.converter_for(request)
for fmt in (InputFormat.PDF, InputFormat.IMAGE):
    out[fmt.value] = resolve(converter.format_to_options[fmt].pipeline_options)
    out[fmt.value]["calls"] = calls()
out["control"] = resolve(PdfPipelineOptions())
out["control"]["calls"] = calls()
print(json.dumps(out))
"""

#: One conversion through VramWorkerOrchestrator in this process, then what it maps.
SERVICE_CONVERSION = """
import asyncio
import io
import json
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
from docling.datamodel.base_models import DocumentStream
from docling.datamodel.service.options import ConvertDocumentsOptions
from docling.datamodel.service.targets import InBodyTarget
from docling.datamodel.service.tasks import TaskType
from docling_jobkit.datamodel.chunking import ChunkingExportOptions
from docling_jobkit.datamodel.task_meta import TaskStatus

from vram_orchestrator.docling import VramOrchestratorConfig, VramWorkerOrchestrator

pipeline, image = sys.argv[1], Path(sys.argv[2])
POOL = {"device": "cpu", "max_workers": 1, "free_vram_on_idle": True, "idle_timeout_s": 0}


def mapped():
    names = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and ".so" in parts[5]:
            names.add(Path(parts[5].strip()).name)
    return sorted(names)


async def main():
    config = VramOrchestratorConfig(pipeline=pipeline, pool_settings=POOL)
    orchestrator = VramWorkerOrchestrator(config)
    queue = asyncio.create_task(orchestrator.process_queue())
    task = await orchestrator.enqueue(
        task_type=TaskType.CONVERT,
        sources=[DocumentStream(name=image.name, stream=io.BytesIO(image.read_bytes()))],
        convert_options=ConvertDocumentsOptions(to_formats=["text"]),
        chunking_options=None,
        chunking_export_options=ChunkingExportOptions(),
        targets=[InBodyTarget()],
        callbacks=[],
        metadata={},
        target_document_version=None,
    )
    for _ in range(2400):
        status = await orchestrator.task_status(task_id=task.task_id)
        if status.is_completed():
            break
        await asyncio.sleep(0.05)
    result = await orchestrator.task_result(task.task_id)
    out = {
        "pipeline": orchestrator.pipeline,
        "status": str(status.task_status.value),
        "error": status.error_message,
        "text": result.result.document.text_content if result is not None else None,
        "maps": mapped(),
        "torch_imported": "torch" in sys.modules,
    }
    queue.cancel()
    try:
        await queue
    except asyncio.CancelledError:
        pass
    print(json.dumps(out))


asyncio.run(main())
"""


def run_with_fake_torch(tmp_path: Path, script: str, *args: str) -> tuple[dict[str, Any], list]:
    """Runs ``script`` in a fresh interpreter whose ``torch`` is the fake; returns its JSON
    output (last stdout line) and what the fake logged."""
    fake = tmp_path / "fake-torch"
    (fake / "torch").mkdir(parents=True, exist_ok=True)
    (fake / "torch" / "__init__.py").write_text(FAKE_TORCH)
    log = tmp_path / "torch-calls.jsonl"
    log.write_text("")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fake), env.get("PYTHONPATH")]))
    env["FAKE_TORCH_LOG"] = str(log)
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return json.loads(lines[-1]), calls


def cuda_calls(calls: list[dict[str, str]]) -> list[str]:
    return [c["call"] for c in calls if c["kind"] == "cuda"]


def assert_no_cuda_in_service(pipeline: str, tmp_path: Path | None = None) -> dict[str, Any]:
    """Converts an image through ``VramWorkerOrchestrator(pipeline=...)`` in a subprocess
    whose torch is the fake (CUDA "available"), with CPU workers; asserts the conversion
    worked, the service process maps no ONNX Runtime or CUDA library and asked torch for no
    CUDA device. Returns the subprocess's report (``torch_imported``, ``maps``, ``calls``)."""
    if tmp_path is None:
        with tempfile.TemporaryDirectory() as scratch:
            return assert_no_cuda_in_service(pipeline, Path(scratch))
    out, calls = run_with_fake_torch(tmp_path, SERVICE_CONVERSION, pipeline, str(IMAGE))
    assert out["pipeline"] == pipeline
    assert out["status"] == "success", out["error"]
    assert out["text"], "the conversion returned no text"
    forbidden = [lib for lib in out["maps"] if lib.startswith(FORBIDDEN_IN_SERVICE)]
    assert not forbidden, forbidden
    assert any(lib.startswith("_native") for lib in out["maps"]), "the extension is mapped"
    assert not cuda_calls(calls), calls
    out["calls"] = calls
    return out


@pytest.mark.parametrize("pipeline", ["ocr", "layout"])
def test_service_conversion_maps_no_cuda_and_asks_torch_for_none(pipeline, tmp_path):
    out = assert_no_cuda_in_service(pipeline, tmp_path)
    if pipeline in ("ocr", "layout"):
        # Where torch is installed docling imports it (docling.datamodel.asr_model_specs asks
        # it about MPS at import time); the torch-free pipelines never even ask about CUDA.
        asked = [c["call"] for c in out["calls"] if "cuda" in c["call"]]
        assert not asked, asked


@pytest.mark.parametrize("docling_device", [None, "cuda:0"])
def test_docling_pipeline_models_resolve_to_cpu_where_cuda_is_available(
    tmp_path, monkeypatch, docling_device
):
    if docling_device is None:
        monkeypatch.delenv("DOCLING_DEVICE", raising=False)
    else:  # docling's own variable: our pipeline does not follow it to the GPU
        monkeypatch.setenv("DOCLING_DEVICE", docling_device)
    out, _ = run_with_fake_torch(tmp_path, DOCLING_DEVICES, str(FULL_PIPELINE_SOURCE))

    # Control: docling's defaults on this (fake) CUDA host put layout and tables on CUDA.
    control = out["control"]
    assert control["table"] == "cuda:0", control
    assert control["layout"] == "cuda:0", control
    assert "torch.device('cuda:0')" in cuda_calls(control["calls"]), control["calls"]

    for fmt in ("pdf", "image"):
        got = out[fmt]
        assert got["accelerator"] == "cpu", got
        assert got["table"] == "cpu", got
        assert got["layout"] == "cpu", got
        # torch's CPU engine: docling's ONNX Runtime engine would map libonnxruntime here.
        assert got["layout_engine"] == "transformers", got
        # The enrichment models (each may pick a device of its own) stay off, even if asked.
        assert not any(got["enrichments"].values()), got["enrichments"]
        assert not cuda_calls(got["calls"]), got["calls"]
        assert any(c["call"] == "torch.cuda.is_available" for c in got["calls"]), (
            "docling's decide_device was not reached"
        )


def test_fake_torch_logs_cuda_use(tmp_path):
    """The fake itself: CUDA uses are logged, CPU ones and availability queries answered
    from NVML are not; one that would initialise the driver is."""
    script = textwrap.dedent(
        """
        import json
        import os
        import torch

        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
        assert torch.cuda.is_available() and torch.cuda.device_count() == 1
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
        assert torch.cuda.is_available()
        torch.device("cpu")
        torch.Tensor().to("cpu")
        torch.device("cuda", 0)
        torch.Tensor().to("cuda:0")
        torch.Tensor().to(device=torch.device("cpu"))
        torch.Tensor().cuda()
        torch.cuda.set_device(0)
        torch.cuda.init()
        print(json.dumps({}))
        """
    )
    _, calls = run_with_fake_torch(tmp_path, script)
    assert cuda_calls(calls) == [
        "torch.cuda.is_available (cuInit)",
        "torch.device('cuda:0')",
        "Tensor.to",
        "Tensor.cuda",
        "torch.cuda.set_device",
        "torch.cuda.set_device()",
        "torch.cuda.init",
        "torch.cuda.init()",
    ], calls
