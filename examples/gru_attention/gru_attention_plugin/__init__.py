"""A worked tinygrad-s2s plugin: `gru_attention`, a GRU encoder-decoder with dot-product attention."""
