"""The model zoo by name: adding a model is one module plus one line in :data:`MODEL_REGISTRY`.

A registered class is built as ``cls(n_features, window, **hparams)`` and declares, as class attributes:

``default_hparams``
    Every hyperparameter and its default (the keys :func:`build_model` and ``models.hparams.<name>`` accept;
    their types are the ``__init__`` annotations, else the defaults' types; their documentation is the class
    docstring's ``Parameters`` section, shown in the parameter reference).
``display_name``
    The name in tables, figures and prose (``'Bi-LSTM'``).
``color``
    Its colour in every figure (a Matplotlib colour; the Okabe-Ito palette for the shipped models).
``hparam_ranges``
    The valid range of every numeric hyperparameter: ``{"hidden_size": {"ge": 1}, "dropout": {"ge": 0, "lt": 1}}``
    (bounds ``ge``, ``gt``, ``le``, ``lt``; ``None`` is always allowed where the type allows it), checked by
    :func:`glass_sm.config.load` and shown in the parameter reference.

Optionally ``check_hparams(hparams)`` (a static method) raises ``ValueError`` for a combination the ranges cannot
express (the Transformer's ``n_heads`` must divide ``d_model``); :func:`glass_sm.config.load` calls it.

Torch models (``torch.nn.Module`` subclasses) also implement ``forward_flops(window, n_features)``.

Hyperparameters from the parameters
-----------------------------------
``models.hparams`` (see :mod:`glass_sm.config`) holds a section ``common`` (settings shared by every model
that declares the key, e.g. ``hidden_size`` for the three recurrent models, ``num_layers`` and ``dropout`` for
those and the Transformer) and one section per model (wins over ``common``). :func:`model_hparams` resolves
them for one model; keys set in neither take the class default when the model is built.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from typing import Any

from torch import nn

from glass_sm.models.lstm import AtLSTMContextLastRegressor, AtLSTMRegressor, BiLSTMRegressor, LSTMRegressor
from glass_sm.models.transformer import TransformerRegressor
from glass_sm.models.xgb import XGBoostRegressor, XGBoostWindowRegressor

__all__ = [
    "COMMON",
    "MODEL_REGISTRY",
    "build_model",
    "count_flops",
    "default_hparams",
    "display_name",
    "hparam_docs",
    "hparam_ranges",
    "hparam_types",
    "is_torch_model",
    "model_class",
    "model_color",
    "model_hparams",
]

MODEL_REGISTRY: dict[str, type] = {
    "lstm": LSTMRegressor,
    "bilstm": BiLSTMRegressor,
    "atlstm": AtLSTMRegressor,  # head reads the attention context alone (the production model)
    "atlstm_cl": AtLSTMContextLastRegressor,  # ablation: head reads [context; last hidden state]
    "transformer": TransformerRegressor,
    "xgboost": XGBoostRegressor,  # the paper's benchmark: the target day's features only
    "xgboost_window": XGBoostWindowRegressor,  # ablation: the whole window flattened
}
"""Model classes by the names used in the parameters (``models.names``, ``models.hparams``) and in checkpoints."""

COMMON = "common"
"""Section of ``models.hparams`` whose keys apply to every model declaring them."""

_SEED = "seed"  # a model declaring this hyperparameter gets the run's seed (see model_hparams)


def _closest_hint(word: str, valid) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``valid`` to ``word``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def model_class(name: str) -> type:
    """The class registered as ``name``.

    Raises
    ------
    ValueError
        Unknown name, naming the valid ones and the closest match.
    """
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model '{name}'{_closest_hint(name, MODEL_REGISTRY)}; valid: {', '.join(MODEL_REGISTRY)}"
        ) from None


def default_hparams(name: str) -> dict:
    """A copy of the ``default_hparams`` of the model registered as ``name`` (a key of :data:`MODEL_REGISTRY`)."""
    return dict(model_class(name).default_hparams)


def hparam_types(name: str) -> dict[str, Any]:
    """Type of each hyperparameter of a registered model, for checking parameter files.

    The annotation of the ``__init__`` argument when there is one (``int | None``), else the type of the
    default; ``typing.Any`` when neither says (a ``None`` default without annotation).

    Parameters
    ----------
    name : str
        Key of :data:`MODEL_REGISTRY`.

    Returns
    -------
    dict
        Hyperparameter -> type, in the order of ``default_hparams``.
    """
    cls = model_class(name)
    hints = typing.get_type_hints(cls.__init__)
    return {key: hints.get(key, Any if default is None else type(default))
            for key, default in cls.default_hparams.items()}


def hparam_ranges(name: str) -> dict[str, dict]:
    """Valid range of each numeric hyperparameter of a registered model: key -> ``{"ge": 1}`` ... (a copy of the
    class's ``hparam_ranges``; empty for a class that declares none)."""
    return {key: dict(bounds) for key, bounds in getattr(model_class(name), "hparam_ranges", {}).items()}


def hparam_docs(name: str) -> dict[str, str]:
    """Hyperparameter -> its text in the ``Parameters`` section of the docstring of the model registered as
    ``name``, else of the nearest base class documenting it (``""`` when undocumented), in the order of
    ``default_hparams``; ``a, b : float`` documents both."""
    cls = model_class(name)
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass documents only what it changes; the rest comes from its bases
        if "__doc__" in vars(klass) and klass.__doc__ and klass not in (object, nn.Module):
            docs.update({k: v for k, v in _parameter_docs(klass.__doc__).items() if v})
    return {key: docs.get(key, "") for key in cls.default_hparams}


def _parameter_docs(docstring: str) -> dict[str, str]:
    """Name -> text of the ``Parameters`` section of a numpy-style docstring (``a, b : float`` documents both)."""
    lines = inspect.cleandoc(docstring).splitlines()
    docs: dict[str, str] = {}
    current: list[str] = []
    inside = False
    for line, underline in zip(lines, lines[1:] + [""]):
        heading = bool(line.strip()) and set(underline.strip()) == {"-"}
        if heading:
            inside = line.strip() == "Parameters"
            current = []
        elif inside and line and not line.startswith(" ") and set(line.strip()) != {"-"}:
            current = [n.strip() for n in line.partition(" : ")[0].split(",")]
            docs.update({n: "" for n in current})
        elif inside and line.strip() and current:
            for n in current:
                docs[n] = f"{docs[n]} {line.strip()}".strip()
    return docs


def build_model(name: str, n_features: int, window: int, **hparams):
    """Build a registered model; hyperparameters not given take the class defaults.

    Parameters
    ----------
    name : str
        Key of :data:`MODEL_REGISTRY` (``'lstm'``, ``'bilstm'``, ``'atlstm'``, ``'atlstm_cl'``, ``'transformer'``,
        ``'xgboost'``, ``'xgboost_window'``).
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days.
    **hparams
        Overrides of :func:`default_hparams`; an unknown key is an error.

    Returns
    -------
    torch.nn.Module or XGBoostRegressor
        The untrained model (torch weights drawn from the current torch RNG state).

    Raises
    ------
    ValueError
        Unknown model name or hyperparameter, naming the valid ones and the closest match.
    """
    cls = model_class(name)
    for key in hparams:
        if key not in cls.default_hparams:
            raise ValueError(
                f"model '{name}': unknown hyperparameter '{key}'{_closest_hint(key, cls.default_hparams)}; "
                f"valid: {', '.join(cls.default_hparams)}"
            )
    return cls(n_features, window, **{**cls.default_hparams, **hparams})


def model_hparams(name: str, cfg, seed: int | None = None) -> dict:
    """Hyperparameters of a registered model from the run's parameters (``cfg.models.hparams``).

    For each hyperparameter the class declares, in its order: the value of ``models.hparams.<name>``, else that
    of ``models.hparams.common``, else nothing (the class default applies when the model is built). A model
    declaring a ``seed`` hyperparameter (XGBoost's subsampling) gets ``seed``, else ``models.hparams.<name>.seed``,
    else ``run.seed``.

    Parameters
    ----------
    name : str
        Key of :data:`MODEL_REGISTRY`.
    cfg : glass_sm.config.Config
        Uses ``cfg.models.hparams`` and ``cfg.run.seed``.
    seed : int, optional
        Seed of a model declaring a ``seed`` hyperparameter (ignored by the others: torch models are seeded by
        :func:`glass_sm.training.set_seed`).

    Returns
    -------
    dict
        Keyword arguments of :func:`build_model` (the ones the parameters set).

    Raises
    ------
    ValueError
        Unknown model name.
    """
    cls = model_class(name)
    table = cfg.models.hparams
    common, own = table.get(COMMON) or {}, table.get(name) or {}
    out = {}
    for key in cls.default_hparams:
        if key == _SEED and (seed is not None or key not in own):
            out[key] = int(cfg.run.seed if seed is None else seed)
        elif key in own:
            out[key] = own[key]
        elif key in common:
            out[key] = common[key]
    return out


def display_name(name: str) -> str:
    """Display name of a model (``'bilstm'`` -> ``'Bi-LSTM'``); an unregistered name is returned as is."""
    return getattr(MODEL_REGISTRY.get(name), "display_name", name)


def model_color(name: str) -> str | None:
    """Figure colour of a model (a Matplotlib colour); ``None`` (the axes' colour cycle) when unregistered."""
    return getattr(MODEL_REGISTRY.get(name), "color", None)


def is_torch_model(name: str) -> bool:
    """Whether a registered model is a torch network (trained by :mod:`glass_sm.training`, has FLOPs)."""
    return issubclass(model_class(name), nn.Module)


def count_flops(model: nn.Module, window: int | None = None, n_features: int | None = None) -> int:
    """Analytic forward FLOPs to predict one window (inference, batch size 1).

    Convention: a multiply-add is 2 FLOPs (dense ``in -> out``: ``2 in out``, bias included); activations and
    element-wise operations 1 FLOP per element; dropout 0. An LSTM layer costs ``8h(in + h) + 9h`` per step
    (see :func:`glass_sm.models.lstm.lstm_flops`); each model's ``forward_flops`` documents the rest.

    Parameters
    ----------
    model : torch.nn.Module
        A recurrent or Transformer model of the registry.
    window : int, optional
        Window length ``L``, days (default: the model's).
    n_features : int, optional
        Input features per step (default: the model's).

    Returns
    -------
    int
        FLOPs per window.

    Raises
    ------
    TypeError
        For models without an analytic count (e.g. XGBoost).
    """
    if not hasattr(model, "forward_flops"):
        raise TypeError(f"no analytic FLOP count for {type(model).__name__}")
    window = model.window if window is None else window
    n_features = model.n_features if n_features is None else n_features
    return int(model.forward_flops(window, n_features))
