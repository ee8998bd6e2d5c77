"""Layers and the Module base class (names as in torch.nn)."""
from .module import Module, ModuleList, Parameter, Sequential
from .layers import Dropout, Embedding, LayerNorm, Linear
from .lstm import LSTM, LSTMCell
from .gru import GRU, GRUCell

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "Embedding", "Linear", "Dropout", "LayerNorm", "LSTM",
           "LSTMCell", "GRU", "GRUCell"]
