"""What a training run keeps on disk, and how to load it back.

A run directory `runs/<name>/` holds:

- `config.json`        everything needed to rebuild the model and reload its data (model name and
                       constructor config, dataset path, reversal, vocabulary, hyper-parameters, seed);
- `metrics.csv`        one row per finished epoch (loss, test accuracy, time, examples/s, learning
                       rate, mean gradient norm);
- `last.npz`, `best.npz`  checkpoints (tg.save format, written atomically): the model's parameters under
                       their names, the optimizer's slot arrays as `optim/<slot>/<index>` (e.g.
                       `optim/m/3`), and in the meta the config, position (epoch, batch, step),
                       optimizer type and hyper-parameters, RNG state and the metrics history;
- `learning_curve.png` training loss and test accuracy per epoch;
- `.lock`              while a process uses the run: its PID, under an OS lock (see rundir).

A run is written in this order: config.json, then last.npz at step 0; at each epoch's end best.npz (if
it improved), metrics.csv, the curve, and last.npz last, so last.npz is never ahead of the others.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import serialization
from ..data.datasets import Vocab, encode_questions, unpad
from .evaluation import generate_batched
from ..models.registry import create_model
from .rundir import BEST, CONFIG, CURVE, LAST, METRICS
from .config import TrainConfig

METRIC_COLUMNS = ("epoch", "step", "train_loss", "test_accuracy", "best_accuracy", "seconds",
                  "examples_per_second", "lr", "grad_norm")
"""metrics.csv's columns; `lr` is the rate of the epoch's last step, `grad_norm` the mean global gradient
norm (before clipping) over its steps (runs written before these columns lack them)."""
_OPTIM = "optim/"


def write_config(run_dir, config) -> None:
    """config.json (a TrainConfig or dict), pretty-printed, strict JSON (no NaN), written atomically."""
    if isinstance(config, TrainConfig):
        config = config.to_dict()
    text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"
    serialization.write_bytes(Path(run_dir) / CONFIG, text.encode())


class RunFileError(ValueError):
    """A run's own file (config.json) that cannot be what this tool wrote; one line naming the file."""


def read_config(run_dir) -> dict:
    """config.json back as a dict (RunFileError naming the file when it is not a JSON object)."""
    path = Path(run_dir) / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{path}: not valid JSON ({exc}); this tool writes it as a JSON object") from None
    except RecursionError:
        raise RunFileError(f"{path}: nests too deeply to be a run's config") from None
    if not isinstance(config, dict):
        raise RunFileError(f"{path}: holds a JSON {type(config).__name__}, not the object of a run's "
                           "settings (was it edited by hand?)")
    return config


def read_run_config(run_dir) -> dict:
    """A run's config: config.json, or where it is missing the one in last.npz's meta."""
    if (Path(run_dir) / CONFIG).is_file():
        return read_config(run_dir)
    return load_checkpoint(Path(run_dir) / LAST)[2]["config"]


def write_metrics(run_dir, history: list[dict]) -> None:
    """metrics.csv from the whole history (rewritten each epoch, so it always matches the checkpoint)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    serialization.write_bytes(Path(run_dir) / METRICS, buf.getvalue().encode())


def read_metrics(run_dir) -> list[dict]:
    """metrics.csv back as a list of dicts of numbers (a column an older run lacks is left out)."""
    with open(Path(run_dir) / METRICS, newline="") as f:
        return [{k: (int(v) if k in ("epoch", "step") else float(v)) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]


def plot_learning_curve(run_dir, history: list[dict], title: str = "") -> None:
    """learning_curve.png: training loss and test accuracy against the epoch (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - slow import, only here
    from matplotlib.figure import Figure  # noqa: PLC0415

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(fig)      # no pyplot: no global state, no GUI backend, safe in any thread
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax2.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", color="tab:green")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy", ylim=(-2, 102))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    serialization.write_bytes(Path(run_dir) / CURVE, buf.getvalue())


def save_checkpoint(path, model, optimizer, meta: dict) -> None:
    """Model parameters + optimizer slots (`optim/<slot>/<i>`) in one atomic .npz; optimizer type and
    hyper-parameters go in the meta next to the caller's (config, position, RNG state, history)."""
    arrays = model.state_dict()
    meta = dict(meta)
    if optimizer is not None:
        state = optimizer.state_dict()
        for slot, values in state["slots"].items():
            for i, a in enumerate(values):
                arrays[f"{_OPTIM}{slot}/{i}"] = a
        meta["optimizer"] = {"type": type(optimizer).__name__, "hyper": state["hyper"],
                             "slots": {k: len(v) for k, v in state["slots"].items()}}
    serialization.save(arrays, path, meta=meta)


def load_checkpoint(path) -> tuple[dict, dict | None, dict]:
    """(model state, optimizer state dict or None, meta) from a file `save_checkpoint` wrote; a meta
    that lacks what resuming needs, or holds it with the wrong type, is a one-line CheckpointError."""
    state, meta = serialization.load(path, return_meta=True)
    check_training_meta(meta, path)
    model_state = {k: v for k, v in state.items() if not k.startswith(_OPTIM)}
    opt = meta.get("optimizer")
    if opt is None:
        return model_state, None, meta
    declared = {f"{_OPTIM}{k}/{i}" for k, n in opt["slots"].items() for i in range(n)}
    held = {k for k in state if k.startswith(_OPTIM)}
    if declared != held:    # a slot count edited in the meta, or arrays gone from the file
        gone, extra = sorted(declared - held), sorted(held - declared)
        _bad(path, f"its meta 'optimizer' slots {opt['slots']} do not match the optimizer arrays it holds ("
             + (f"missing {', '.join(gone[:3])}" if gone else f"unlisted {', '.join(extra[:3])}")
             + (" and more" if len(gone if gone else extra) > 3 else "") + ")")
    slots = {k: [state[f"{_OPTIM}{k}/{i}"] for i in range(n)] for k, n in opt["slots"].items()}
    return model_state, {"hyper": opt["hyper"], "slots": slots}, meta


def _bad(path, reason):
    raise serialization.CheckpointError(path, reason) from None


def _is_int(v, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def checkpoint_config(meta: dict, path) -> dict:
    """The run config in a checkpoint's meta, checked for what rebuilding its model and answering
    questions need (missing keys and wrong types are one-line CheckpointErrors naming the file)."""
    config = meta.get("config")
    if config is None:
        _bad(path, "a bare weights file, not a training checkpoint (no config in its meta)")
    if not isinstance(config, dict):
        _bad(path, f"its meta 'config' is a {type(config).__name__}, expected an object")
    missing = [k for k in ("model", "vocab", "question_width", "answer_width") if k not in config]
    if missing:
        _bad(path, f"its config lacks {', '.join(map(repr, missing))}")
    checks = [("model", isinstance(config["model"], str) and config["model"], "a model name"),
              ("vocab", isinstance(config["vocab"], str) and "_" in config["vocab"]
               and len(set(config["vocab"])) == len(config["vocab"]), "a string of distinct characters with '_'"),
              ("question_width", _is_int(config["question_width"], 1), "a positive integer"),
              ("answer_width", _is_int(config["answer_width"], 2), "an integer >= 2"),
              ("reverse", isinstance(config.get("reverse", False), bool), "true or false"),
              ("model_config", isinstance(config.get("model_config") or {}, dict), "an object")]
    for key, ok, expected in checks:
        if not ok:
            _bad(path, f"its config '{key}' is {config[key]!r}; expected {expected}")
    try:
        TrainConfig.from_dict(config).check()
    except ValueError as exc:
        _bad(path, f"its config: {exc}")
    return config


def check_training_meta(meta: dict, path) -> None:
    """Check what resuming reads from a checkpoint's meta: the config, the position, the RNG states,
    the history and the optimizer's description."""
    checkpoint_config(meta, path)
    for key, ok, expected in [
            ("epoch", _is_int(meta.get("epoch")), "a non-negative integer"),
            ("batch", _is_int(meta.get("batch")), "a non-negative integer"),
            ("step", _is_int(meta.get("step")), "a non-negative integer"),
            ("rng", isinstance(meta.get("rng"), dict), "a generator state (an object)"),
            ("rng_epoch_start", isinstance(meta.get("rng_epoch_start"), dict), "a generator state (an object)"),
            ("history", isinstance(meta.get("history", []), list)
             and all(isinstance(h, dict) for h in meta.get("history", [])), "a list of objects"),
            ("optimizer", meta.get("optimizer") is None or _optimizer_ok(meta["optimizer"]),
             "an object with 'type', 'hyper' and 'slots' (name -> count)")]:
        if not ok:
            _bad(path, f"its meta lacks '{key}'" if key not in meta else
                 f"its meta '{key}' is {meta[key]!r:.80}; expected {expected}")


def _optimizer_ok(opt) -> bool:
    return (isinstance(opt, dict) and isinstance(opt.get("type"), str) and isinstance(opt.get("hyper"), dict)
            and isinstance(opt.get("slots"), dict) and all(_is_int(n) for n in opt["slots"].values()))


def resolve_checkpoint(path) -> Path:
    """A checkpoint file, or a run directory's best checkpoint (its last one before any epoch ended)."""
    p = Path(path)
    if p.is_dir():
        for name in (BEST, LAST):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"{p} holds no checkpoint ({BEST} or {LAST}); is it a run directory?")
    if p.is_file():
        return p
    raise FileNotFoundError(f"no such run directory or checkpoint: {p}")


def build_model(config):
    """A fresh model (random weights from the current RNG) of the architecture a config (TrainConfig
    or config.json dict) describes: the model's own recorded constructor config when there is one,
    else the run's settings (book values for those left unset) and --model-arg keywords."""
    cfg = (config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)).resolved()
    kwargs = dict(cfg.model_args or {})
    kwargs.update(cfg.model_config or {})
    vocab_size = kwargs.pop("vocab_size", len(cfg.vocab))
    wordvec = kwargs.pop("wordvec_size", cfg.wordvec)
    hidden = kwargs.pop("hidden_size", cfg.hidden)
    return create_model(cfg.model, vocab_size, wordvec_size=wordvec, hidden_size=hidden, **kwargs)


@dataclass
class Run:
    """A trained model loaded from a run directory or checkpoint (`load_run`), ready to answer questions.

    Args:
        model: the Seq2seqModel, in eval mode.
        vocab: its Vocab.
        config: the run's config dict (config.json).
        meta: the checkpoint's meta dict (epoch, history, ...).
        checkpoint: the checkpoint file it was loaded from.
        run_dir: the run directory.
    """
    model: object
    vocab: Vocab
    config: dict
    meta: dict
    checkpoint: Path
    run_dir: Path

    question_width = property(lambda self: int(self.config["question_width"]))
    answer_width = property(lambda self: int(self.config["answer_width"]))
    reverse = property(lambda self: bool(self.config.get("reverse", False)))
    start_id = property(lambda self: self.vocab.char_to_id["_"])

    def encode_questions(self, questions) -> np.ndarray:
        """Typed questions as the model's input ids, padded and reversed as in training.

        Args:
            questions: a list of strings (`["1+2", "12+345"]`).

        Returns:
            numpy.ndarray: (n, question_width) ids.

        Raises:
            ValueError: a question wider than the model's, a character outside its vocabulary, an empty
                question, or the start marker.
        """
        return encode_questions(questions, self.vocab, self.question_width, self.reverse)

    def predict(self, questions, sample: bool = False, temperature: float = 1.0,
                batch_size: int = 1000) -> list[str]:
        """Answer typed questions, greedy unless `sample`.

        Args:
            questions: a list of strings.
            sample: draw each id instead of taking the most likely one.
            temperature: divides the logits before sampling.
            batch_size: questions decoded at a time.

        Returns:
            list[str]: one answer per question, padding stripped (`["3", "357"]`).

        Raises:
            ValueError: a question the model cannot read (see `encode_questions`).
        """
        ids = generate_batched(self.model, self.encode_questions(questions), self.start_id,
                               self.answer_width - 1, batch_size=batch_size, sample=sample,
                               temperature=temperature)
        return [unpad(s) for s in self.vocab.decode_batch(ids)] if len(ids) else []


def load_run(path, device: str = "cpu") -> Run:
    """Load a run directory (its best checkpoint) or a checkpoint file.

    Rebuilds the model from the saved config, loads the weights and puts it in eval mode on
    `device`. The config and the weights come from one open file, and the sizes the config gives are
    checked against the arrays the file holds before the model is built.

    Args:
        path: a run directory or a `.npz` checkpoint.
        device: `"cpu"` or `"cuda"`.

    Returns:
        Run: the model with its vocabulary and widths (`run.predict(["1+2"])`).

    Raises:
        FileNotFoundError: no such directory or file, or a directory without a checkpoint.
        CheckpointError: a file that is not a checkpoint of this tool, is damaged, or whose config
            does not build its model.
    """
    ckpt = resolve_checkpoint(path)
    with serialization.Checkpoint(ckpt) as ck:
        meta = ck.meta
        config = checkpoint_config(meta, ckpt)
        check_sizes(config, ck.shapes(), ckpt)
        check_widths(config, ckpt)
        try:
            model = build_model(config)
        except (TypeError, ValueError) as exc:   # an unknown model, a model_config its constructor does not take
            _bad(ckpt, f"its config does not build a '{config['model']}' model: {exc}")
        # only the model's own arrays are read, each declared with the shape the model has
        model.load_state_dict(ck.arrays(expect={k: v.shape for k, v in model.state_dict().items()}))
    if device != "cpu":
        model.to(device)
    model.eval()
    return Run(model=model, vocab=Vocab(config["vocab"]), config=config, meta=meta, checkpoint=ckpt,
               run_dir=ckpt.parent)


_SIZE_KEYS = ("wordvec_size", "hidden_size")


def check_sizes(config: dict, shapes: dict, path) -> None:
    """Refuse a config whose model would not be the one the file's arrays are (`shapes`, read from
    the members' own headers), before it is built: a size edited into the meta would otherwise
    allocate what the file never held (vocab_size 1e8: gigabytes). The vocabulary size must be the
    vocabulary's, the embedding and hidden sizes at most the largest dimension of the file's arrays
    (an embedding or weight matrix has them; models may scale them, hence not equality), and any other
    integer setting (layers, heads, max_len...) at most the number of numbers the file holds. What is
    built is then bounded by the file's own size; `load` checks each shape exactly afterwards."""
    cfg = TrainConfig.from_dict(config).resolved()
    kwargs = dict(cfg.model_args or {}, **(cfg.model_config or {}))
    sizes = {"vocab_size": kwargs.pop("vocab_size", len(cfg.vocab)), "wordvec_size": kwargs.pop("wordvec_size", cfg.wordvec),
             "hidden_size": kwargs.pop("hidden_size", cfg.hidden)}
    if sizes["vocab_size"] != len(cfg.vocab):
        _bad(path, f"its model_config 'vocab_size' is {sizes['vocab_size']!r}, but its vocabulary has "
                   f"{len(cfg.vocab)} characters")
    largest = max((d for shape in shapes.values() for d in shape), default=0)
    numbers = sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values())
    for key in _SIZE_KEYS:
        if _is_int(sizes[key]) and sizes[key] > largest:
            _bad(path, f"its config gives {key} {sizes[key]:,}, larger than any array it holds (the largest "
                       f"dimension is {largest:,}); the config and the weights disagree")
    for key, value in kwargs.items():
        if _is_int(value) and value > max(numbers, 1):
            _bad(path, f"its model_config '{key}' is {value:,}, more than the {numbers:,} numbers the file "
                       "holds; the config and the weights disagree")


def check_widths(config: dict, path) -> None:
    """A checkpoint inside a run directory must give the widths that run's config.json records:
    decoding runs answer_width steps, so a width edited into one file (1e7) would decode for minutes."""
    run_config = Path(path).parent / CONFIG
    if not run_config.is_file():
        return
    try:
        recorded = read_config(run_config.parent)
    except (OSError, RunFileError):
        return              # an unreadable config.json is not this checkpoint's fault; eval reports it
    for key in ("question_width", "answer_width"):
        if key in recorded and recorded[key] != config[key]:
            _bad(path, f"its config gives {key} {config[key]!r}, the run's {CONFIG} records "
                       f"{recorded[key]!r}; the checkpoint does not belong to this run")
