"""Export to ONNX: `tg.onnx.export(fn, example_inputs, path, dynamic_axes=...)` traces a function and
writes an ONNX model; `export_run(run, out)` writes a trained zoo model's encoder and one-step decoder
with a JSON sidecar, which `python -m tinygrad_s2s.onnx.predict DIR "16+75"` (NumPy and onnxruntime
only) decodes. Each op is lowered by its own `onnx` method, beside its forward (tinygrad_s2s/ops).

Importing this package needs neither onnx nor onnxruntime (the core install is NumPy only); exporting
needs the `export` extra: `pip install 'tinygrad-s2s[export]'`.
"""
from .trace import OnnxExportError, TracerWarning
from .export import OPSET, TOLERANCES, check_outputs, export, run_model, to_model
from .model import export_run

__all__ = ["OPSET", "TOLERANCES", "OnnxExportError", "TracerWarning", "check_outputs", "export", "export_run",
           "run_model", "to_model"]
