"""The model plugin contract: what every registered model must do, each item stated once here (the
README lists the same items, a test keeps the two in step), and the cheap checks that `train`,
`eval` and `predict` run on every call, so a broken plugin fails at once with the item it broke
instead of deep inside NumPy. `tg.testing.check_model` runs the whole battery.
"""
from __future__ import annotations

import numpy as np

CONTRACT = {
    "factory": "the factory takes vocab_size, wordvec_size and hidden_size (plus its own keyword "
               "arguments) and returns a tg.nn.Module",
    "config": "model.config, when the model sets one, must be a JSON-able dict of keyword arguments that "
              "rebuilds the same model (without one, the registry records the factory's keyword arguments)",
    "inputs": "xs (N, T) and ts (N, 1 + L) arrive as int64 NumPy id arrays; ts carries the start marker "
              "in column 0 and the model predicts ts[:, 1:] from ts[:, :-1]",
    "loss": "model(xs, ts) must return the mean loss as a scalar float Tensor of shape ()",
    "gradient": "the loss must reach every parameter, with the gradient central differences give",
    "generate": "generate must return an integer array of shape (N, length)",
    "greedy": "generate(xs, start_id, length) with sample=False must be deterministic in eval mode, and "
              "with beam=1 (when it takes beam) equal to greedy decoding",
    "beam": "generate(xs, start_id, length, beam=3) (when it takes beam) must return an integer array of "
            "shape (N, length) whose every row is the answer its question gets when decoded alone (the "
            "decoding state lives in what decode_step returns, never on the model)",
    "round trip": "a model rebuilt from its config and loaded from its saved state_dict must give the "
                  "same loss and the same answers",
    "device": "model.to(device) must move every array: on the strict fake GPU the loss and answers are "
              "the CPU's",
    "attention": "attention_weights (optional, for attention-map) must be None or an array of shape "
                 "(N, length, T) after generate",
    "draws": "the loss's graph must be drawable (tg.viz.to_dot)",
    "exportable": "(optional: reported, not required) the encoder and the decoder step export to ONNX "
                  "(tg.onnx) and, run in onnxruntime, give the model's greedy answers and its logits within "
                  "1e-4; without the export extra it is reported as not checked",
}
"""Contract item -> the requirement, as quoted by every `ContractError`."""


class ContractError(TypeError):
    """A model broke an item of the plugin contract (a TypeError); `item` names it (a key of CONTRACT).

    Args:
        item: the key of `CONTRACT` that was broken.
        got: what the model gave instead, in words (`"float64 (200, 3)"`).
        model: the model's registered name, if known.
    """

    def __init__(self, item: str, got: str, model: str | None = None):
        self.item, self.got, self.model = item, got, model
        who = f"model '{model}' breaks" if model else "breaks"
        super().__init__(f"{who} the plugin contract ({item}): {CONTRACT[item]}; got {got}")


def describe_value(x) -> str:
    """'float64 (200, 3)' for an array, 'Tensor float32 (200, 3)' for a Tensor, else the type name."""
    from ..tensor import Tensor  # noqa: PLC0415 - the contract is importable without the engine
    if isinstance(x, Tensor):
        return f"Tensor {x.dtype} {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"{x.dtype} {x.shape}"
    return type(x).__name__


def check_loss(loss, model: str | None = None):
    """The loss a model returned: a float Tensor of shape () (returned unchanged), else ContractError."""
    from ..tensor import Tensor  # noqa: PLC0415
    if not isinstance(loss, Tensor) or loss.shape != () or loss.dtype.kind != "f":
        raise ContractError("loss", describe_value(loss), model)
    return loss


def check_generated(out, n: int, length: int, model: str | None = None) -> np.ndarray:
    """What generate returned: an integer NumPy array (n, length) (returned unchanged), else ContractError."""
    if not isinstance(out, np.ndarray) or out.dtype.kind not in "iu" or out.shape != (n, length):
        raise ContractError("generate", describe_value(out) + f" for N={n}, length={length}", model)
    return out
