"""Export a trained run to PyTorch: `export_run(run, out)` writes the weights as safetensors, a JSON
config and `model.py`, a standalone file of PyTorch modules for the five zoo models that loads them with
torch and safetensors alone (`import model; m = model.load(out)`).

Importing this package needs NumPy only: safetensors is imported when exporting (the `export` extra),
torch only by the exported `model.py` (the `bench` extra, or the user's own PyTorch).
"""
from .convert import BOOK_TO_TORCH_GATES, ConversionError, lstm_gates_to_torch, torch_state
from .export import EXPORTABLE, ExportError, export_run, export_settings

__all__ = ["export_run", "export_settings", "torch_state", "lstm_gates_to_torch", "EXPORTABLE", "ExportError",
           "ConversionError", "BOOK_TO_TORCH_GATES"]
