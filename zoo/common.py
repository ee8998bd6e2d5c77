"""Moved: plugins subclass `tinygrad_s2s.models.Seq2seqModel`, and the book's encoder is
`zoo.seq2seq.Encoder`. This module keeps old plugins importing until tinygrad-s2s 0.2, with one
FutureWarning."""
import warnings

from tinygrad_s2s.models.base import DECODE_CHUNK, Seq2seqModel, as_ids, check_pair

from .seq2seq import Encoder

warnings.warn("zoo.common moved: subclass tinygrad_s2s.models.Seq2seqModel (the book's encoder is zoo.seq2seq.Encoder);"
              " the old name works until tinygrad-s2s 0.2", FutureWarning, stacklevel=2)

__all__ = ["DECODE_CHUNK", "Encoder", "Seq2seqModel", "as_ids", "check_pair"]
