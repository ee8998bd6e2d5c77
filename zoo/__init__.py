"""The model zoo: five seq2seq plugins built only from tinygrad_s2s's public API.

Each module registers its model with `tg.register_model`; pyproject.toml lists them in the
`tinygrad_s2s.models` entry-point group exactly as an outside plugin package would.
"""
