"""The book's attention map (Fig. 8-26): output characters down, input characters across, one cell per
attention weight. Drawn with matplotlib's Agg canvas directly, so no GUI backend is ever touched and
the global pyplot state is left alone; a notebook shows the Figure inline (`figures.InlineFigure`)."""
from __future__ import annotations

import os

import numpy as np

PAD_SHOWN = "·"   # a space would be an invisible tick label


def _labels(tokens, n: int, what: str) -> list[str]:
    if isinstance(tokens, str):
        tokens = list(tokens)
    tokens = [str(t) for t in tokens]
    if len(tokens) != n:
        raise ValueError(f"attention_heatmap: {len(tokens)} {what} tokens for {n} {what} positions "
                         "of the weights")
    return [PAD_SHOWN if t == " " else t for t in tokens]


def attention_heatmap(weights, src_tokens, tgt_tokens, path=None, *, title: str | None = None):
    """The attention weights of one sequence as a heatmap, black (0) to white (1) as in the book.

    Args:
        weights: (L, T) (a leading batch axis of 1 is accepted): row i holds output step i's weights
            over the T input positions (an array or Tensor; `model.attention_weights[0]`).
        src_tokens: T labels across (a string counts one token per character).
        tgt_tokens: L labels down.
        path: a file to save to (`.png`, `.svg` or `.pdf`: the extension picks the format), or None.
        title: a title above the map.

    Returns:
        str | matplotlib.figure.Figure: the path written, or without `path` the Figure (a notebook
            shows it inline).

    Raises:
        ValueError: weights that are not (L, T), hold NaN or Inf, or do not match the token counts, or
            a path whose extension is no image format.
    """
    from .figures import InlineFigure  # noqa: PLC0415 - matplotlib is heavy: only here

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2:
        raise ValueError(f"attention_heatmap: expected weights of shape (L, T), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("attention_heatmap: the weights hold NaN or Inf")
    L, T = w.shape
    xs, ys = _labels(src_tokens, T, "source"), _labels(tgt_tokens, L, "target")
    ext = None if path is None else os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext is not None and ext not in ("png", "svg", "pdf"):
        raise ValueError(f"attention_heatmap: cannot tell the image format of {os.fspath(path)!r}; "
                         "use .png, .svg or .pdf")
    fig = InlineFigure(figsize=(0.38 * T + 1.8, 0.38 * L + 1.4), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    mesh = ax.pcolormesh(w, cmap="Greys_r", vmin=0.0, vmax=1.0)
    ax.set_xticks(np.arange(T) + 0.5, labels=xs)
    ax.set_yticks(np.arange(L) + 0.5, labels=ys)
    ax.invert_yaxis()               # first output step at the top, read like the book
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, pad=24, fontsize=10)
    fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    if path is None:
        return fig
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format=ext)
    return os.fspath(path)


def attention_map_for_run(run, question: str, out=None, length: int | None = None, source=None, beam: int = 1):
    """Decode `question` with the attention model of `run` (a run directory, a checkpoint, or a run
    `train.load_run` returned), greedily or (`beam` > 1) by beam search, and save the heatmap of the
    attention of the decoded answer to `out` (returned), or with no `out` return it as a Figure (a
    notebook shows it inline); the input is shown in typed order even when the run was
    trained on reversed questions. `length` (default: the trained answer length, also its maximum)
    is how many characters to decode."""
    from ..training.trainer import load_run  # noqa: PLC0415 - the trainer pulls in the data pipeline

    if isinstance(run, (str, os.PathLike)):
        run, source = load_run(run), run
    run_path = source if source is not None else "run"
    most = run.answer_width - 1
    length = most if length is None else length
    if not 0 < length <= most:
        raise ValueError(f"{run_path}: length {length} is outside 1..{most}, the answer length the run "
                         "was trained on")
    x = run.encode_questions([question])
    ids = run.model.generate(x, run.start_id, length, **({"beam": beam} if beam > 1 else {}))
    weights = getattr(run.model, "attention_weights", None)
    if weights is None:
        raise ValueError(f"{run_path}: model '{run.config.get('model')}' records no attention weights "
                         "(attention-map needs an attention model, e.g. one trained with `train attention`)")
    weights = np.asarray(weights)
    if weights.ndim != 3 or weights.shape[0] != 1 or weights.shape[2] != x.shape[1]:
        raise ValueError(f"{run_path}: expected attention weights of shape (1, L, {x.shape[1]}) after "
                         f"decoding one question, got {weights.shape}")
    weights = weights[0, :ids.shape[1]]
    src = run.vocab.decode(x[0])
    if run.reverse:               # undo the training-time reversal so the question reads left to right
        weights, src = weights[:, ::-1], src[::-1]
    answer = run.vocab.decode(ids[0])
    title = f"{question!r} -> {answer.rstrip()!r}" + (f" (beam {beam})" if beam > 1 else "")
    return attention_heatmap(weights, src, answer, out, title=title)
