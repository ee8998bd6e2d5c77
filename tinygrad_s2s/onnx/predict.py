"""Answer questions with a model that `tinygrad-s2s export RUN --format onnx --out DIR` wrote, using
NumPy and onnxruntime only: this file imports nothing of tinygrad_s2s, so it runs where the library is
not installed (export copies it into DIR):

    python DIR/predict.py DIR "16+75"             # or: python -m tinygrad_s2s.onnx.predict DIR "16+75"
    python DIR/predict.py DIR "16+75" --beam 3

DIR holds encoder.onnx, the one-step decoders decoder_step*.onnx and model.json (the vocabulary, the
widths, the start id, whether questions are reversed, and which file decodes which step). Questions
are padded and reversed as in training; answers come back with their padding stripped. Greedy picks
the argmax at each step (ties to the lower id); beam search is the library's (Seq2seqModel.beam_search):
summed float64 log-probabilities of the B best hypotheses, ties to the lower index, no end id and no
length penalty, so its best answer is `tinygrad-s2s eval --beam B`'s.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SIDECAR = "model.json"
FORMAT = "tinygrad-s2s-onnx"
PAD, START = " ", "_"


class ExportedModel:
    """An exported model directory: `answer(questions, beam=1)` -> answers; `decode(xs)` -> ids and
    each step's logits."""

    def __init__(self, directory):
        import onnxruntime  # noqa: PLC0415 - a clear error below where it is missing
        self.dir = Path(directory)
        try:
            meta = json.loads((self.dir / SIDECAR).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.dir / SIDECAR}: not an exported model's sidecar ({exc})") from None
        if meta.get("format") != FORMAT:
            raise ValueError(f"{self.dir / SIDECAR}: format {meta.get('format')!r}, expected {FORMAT!r}")
        self.meta = meta
        self.vocab = meta["vocab"]
        self.ids = {c: i for i, c in enumerate(self.vocab)}
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4

        def session(name):
            return onnxruntime.InferenceSession(str(self.dir / name), options, providers=["CPUExecutionProvider"])
        self.encoder = session(meta["encoder"]["file"])
        self.steps = [(s["from_step"], session(s["file"]), s) for s in meta["steps"]]

    def encode_questions(self, questions) -> np.ndarray:
        """Typed questions -> (n, question_width) int64 ids, padded with spaces (reversed where trained so)."""
        width, rows = self.meta["question_width"], []
        for q in questions:
            bad = [c for c in q if c not in self.ids]
            if bad or not q.strip(PAD) or START in q or len(q) > width:
                why = (f"the character {bad[0]!r} is not in the vocabulary" if bad else "it is empty" if not q.strip(PAD)
                       else f"it holds the start marker {START!r}" if START in q else f"it is longer than {width}")
                raise ValueError(f"question {q!r}: {why}")
            rows.append([self.ids[c] for c in q.ljust(width, PAD)])
        x = np.array(rows, dtype=np.int64).reshape(len(rows), width)
        return np.ascontiguousarray(x[:, ::-1]) if self.meta["reverse"] else x

    def start(self, xs):
        outs = self.encoder.run(None, {self.meta["encoder"]["input"]: xs})
        n_memory = len(self.meta["memory"])
        return outs[:n_memory], outs[n_memory:]

    def step(self, j: int, ids, memory, state):
        """Step j: ids (R, 1) -> logits (R, V) and the next state."""
        _, session, spec = [s for s in self.steps if s[0] <= j][-1]
        feed = {"ids": ids, **dict(zip(self.meta["memory"], memory)), **dict(zip(spec["state_in"], state))}
        outs = session.run(None, feed)
        return outs[0], outs[1:]

    def decode(self, xs):
        """Greedy decoding: (ids (N, length), [logits (N, V) of each step])."""
        memory, state = self.start(xs)
        ids = np.full((len(xs), 1), self.meta["start_id"], dtype=np.int64)
        out, logits = [], []
        for j in range(self.meta["decoding"]["length"]):
            scores, state = self.step(j, ids, memory, state)
            logits.append(scores)
            ids = scores.argmax(axis=1).astype(np.int64)[:, None]
            out.append(ids)
        return np.concatenate(out, axis=1) if out else np.zeros((len(xs), 0), np.int64), logits

    def beam_search(self, xs, beam: int):
        """Beam search as the library's: ids (N, length) of the best hypothesis and its score (N,)."""
        n, B, length = len(xs), beam, self.meta["decoding"]["length"]
        memory, state = self.start(xs)
        expand = np.repeat(np.arange(n), B)
        memory, state = [m[expand] for m in memory], [s[expand] for s in state]
        raw = np.zeros((n, B))
        raw[:, 1:] = -np.inf                       # step 0 extends the first copy only
        ids = np.full((n * B, 1), self.meta["start_id"], dtype=np.int64)
        tokens, parents = [], []
        for j in range(length):
            scores, state = self.step(j, ids, memory, state)
            z = scores.astype(np.float64)
            z = z - z.max(axis=-1, keepdims=True)
            logp = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).reshape(n, B, -1)
            V = logp.shape[2]
            cand = (raw[:, :, None] + logp).reshape(n, B * V)
            top = np.argsort(-cand, axis=1, kind="stable")[:, :B]
            parent, tok = top // V, top % V
            raw = np.take_along_axis(cand, top, axis=1)
            tokens.append(tok)
            parents.append(parent)
            ids = tok.reshape(-1, 1).astype(np.int64)
            rows = (np.arange(n)[:, None] * B + parent).reshape(-1)
            state = [s[rows] for s in state]
        best = np.argsort(-raw, axis=1, kind="stable")[:, :1]
        out = np.zeros((n, length), dtype=np.int64)
        cur = best
        for j in range(length - 1, -1, -1):
            out[:, j] = np.take_along_axis(tokens[j], cur, axis=1)[:, 0]
            cur = np.take_along_axis(parents[j], cur, axis=1)
        return out, np.take_along_axis(raw, best, axis=1)[:, 0]

    def answer(self, questions, beam: int = 1) -> list[str]:
        """Answers (padding stripped) to typed questions."""
        xs = self.encode_questions(questions)
        ids = self.decode(xs)[0] if beam == 1 else self.beam_search(xs, beam)[0]
        return ["".join(self.vocab[i] for i in row).rstrip(PAD) for row in ids]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="predict", description="Answer questions with an exported model "
                                "(NumPy and onnxruntime only).")
    p.add_argument("directory", help="the directory `tinygrad-s2s export --format onnx` wrote")
    p.add_argument("questions", nargs="+", help="questions, e.g. '16+75'")
    p.add_argument("--beam", type=int, default=1, help="beam search with B hypotheses (default 1: greedy)")
    args = p.parse_args(argv)
    if args.beam < 1:
        p.error(f"--beam must be a positive int, got {args.beam}")
    try:
        model = ExportedModel(args.directory)
        answers = model.answer(args.questions, args.beam)
    except (ValueError, OSError, ImportError) as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        return 1
    for q, a in zip(args.questions, answers):
        print(f"{q} -> {a}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
