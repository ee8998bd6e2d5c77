"""Model registry: `register_model`, `create_model`, `available_models`; plugins come in through the
entry-point group `tinygrad_s2s.models` (the project's own zoo included), loaded on first use."""
from __future__ import annotations

import json
import warnings
from importlib.metadata import entry_points

GROUP = "tinygrad_s2s.models"
_models: dict[str, tuple[type, str]] = {}   # name -> (factory, where it came from)
_loaded = False
_current_source = [None]    # (module, description) of the entry point being loaded


class UnknownModelError(ValueError):
    """A model name nobody registered (the command line exits 2 with it)."""


def register_model(name: str):
    """Class (or factory) decorator that registers a model under `name`: `@tg.register_model("mine")`.

    Args:
        name: the name `create_model` and the command line (`tinygrad-s2s train NAME`) use.

    Returns:
        Callable: the decorator; it returns the class unchanged.
    """
    def deco(factory):
        module = getattr(factory, "__module__", "?")
        loading = _current_source[0]
        # a plugin module may import another (peeky's subclasses seq2seq's): each model is credited to the
        # entry point of the module that defines it, once that one loads
        from_entry_point = loading is not None and loading[0] == module
        source = loading[1] if from_entry_point else module
        if name in _models and _models[name][0] is factory:
            if from_entry_point:   # imported directly first, now reached through its entry point
                _models[name] = (factory, source)
            return factory
        if name in _models:
            warnings.warn(f"model '{name}' from {source} ignored: the name is already registered by "
                          f"{_models[name][1]}", stacklevel=2)
            return factory
        _models[name] = (factory, source)
        return factory
    return deco


def load_plugins(force: bool = False) -> None:
    """Import every entry point of the group once; a failing plugin warns and the rest still load."""
    global _loaded
    if _loaded and not force:
        return
    _loaded = True
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        source = f"plugin '{ep.name}' ({ep.value}" + (f", package {dist.name})" if dist else ")")
        _current_source[0] = (ep.module, source)
        try:
            ep.load()
            for name, (factory, src) in list(_models.items()):
                if src == ep.module:    # the module was imported directly before plugins loaded
                    _models[name] = (factory, source)
        except Exception as exc:  # a broken plugin must not take the others down
            warnings.warn(f"plugin '{ep.name}' ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
                          stacklevel=2)
        finally:
            _current_source[0] = None


def available_models() -> dict[str, str]:
    """Every registered model: the built-in plugins, entry points of installed packages, `register_model` calls.

    Returns:
        dict[str, str]: name -> where it came from (entry point and package, or the registering module).
    """
    load_plugins()
    return {name: src for name, (_, src) in sorted(_models.items())}


def require_model(name: str) -> None:
    """Raise UnknownModelError, listing the registered names, unless `name` is registered."""
    load_plugins()
    if name not in _models:
        known = ", ".join(sorted(_models)) or "none"
        raise UnknownModelError(f"unknown model '{name}'; registered models: {known} "
                                "(see `tinygrad-s2s models`)")


def check_model_args(name: str, keys) -> None:
    """Before building anything: UnknownModelError for an unregistered `name`, and TypeError naming
    the keyword arguments in `keys` its factory does not take (a typo in `--model-arg`) and the ones
    it does. A factory taking **kwargs, or without a signature to read, is left to the call."""
    import inspect  # noqa: PLC0415
    require_model(name)
    try:
        params = inspect.signature(_models[name][0]).parameters
    except (TypeError, ValueError):       # no signature to read (a builtin): the call itself will tell
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    own = [k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
           and k not in ("self", "vocab_size", "wordvec_size", "hidden_size")]
    unknown = sorted(set(keys) - set(params))
    if unknown:
        raise TypeError(f"model '{name}' takes no argument {', '.join(repr(k) for k in unknown)} (its own "
                        f"arguments: {', '.join(own) or 'none'})")


def registered_name(model) -> str | None:
    """The registry name whose factory is `model`'s class.

    Args:
        model: a model instance.

    Returns:
        str | None: the name, or None if no registered factory built it.
    """
    load_plugins()
    return next((name for name, (factory, _) in _models.items() if factory is type(model)), None)


def create_model(name: str, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, **extra):
    """Build a registered model; `model(xs, ts)` is its mean loss, `model.generate(...)` decodes.

    A model that sets no `config` gets the keyword arguments it was built with as its `config`, so a
    saved run rebuilds the same model.

    Args:
        name: a registered name (`"seq2seq"`, `"peeky"`, `"attention"`, ...; see `available_models()`).
        vocab_size: V, the number of ids.
        wordvec_size: D, the embedding size; default 16 (the book's).
        hidden_size: H, the hidden size; default 128 (the book's for addition).
        **extra: the model's own keyword arguments (`layers=2`, `dropout=0.1`), JSON-able.

    Returns:
        Seq2seqModel: the new model.

    Raises:
        UnknownModelError: no model of that name is registered (the message lists them).
        TypeError: a keyword the model does not take.
        ValueError: keyword arguments that are not JSON-able.
    """
    require_model(name)
    kwargs = dict(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size, **extra)
    return record_config(_models[name][0](**kwargs), kwargs, name)


def record_config(model, kwargs: dict, name: str):
    """Give `model` the keyword arguments it was built with as its `config` when it set none itself:
    without one, a saved run could not rebuild the model it trained. Returns the model."""
    if getattr(model, "config", None) is None:
        try:
            json.dumps(kwargs)
        except TypeError as exc:
            raise ValueError(f"model '{name}': its keyword arguments must be JSON-able to be saved with a "
                             f"run ({exc}); give the model a `config` dict that is") from None
        model.config = dict(kwargs)
    return model
