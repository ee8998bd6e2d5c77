"""Bounds on how long things take, which only mean something on a machine like the one they were set
on: marked `machine`, left out of the default run (.ci/run runs them as a step of their own)."""
import time

import pytest

from tinygrad_s2s.viz import render, to_dot
from tinygrad_s2s.viz.model_graphs import model_graph

pytestmark = pytest.mark.machine


def test_the_whole_4_layer_deep_lstm_graph_is_drawn_within_10_seconds(tmp_path):
    start = time.perf_counter()
    drawn = model_graph("deep_lstm", whole=True, layers=4)
    render(to_dot(*drawn.outputs, module=drawn.module), tmp_path / "deep.svg")
    seconds = time.perf_counter() - start
    assert seconds < 10, f"the 4-layer deep_lstm graph took {seconds:.1f} s"
