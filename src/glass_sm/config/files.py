"""Reading a params file (YAML; every failure a ConfigError naming the file), :func:`load`, dumping, and the
params reference (:func:`describe`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import typing
from pathlib import Path
from typing import Any

import yaml

from glass_sm.models.registry import COMMON, MODEL_REGISTRY, hparam_docs, hparam_ranges, hparam_types

from glass_sm.config.schema import *  # noqa: F401,F403
from glass_sm.config.checks import *  # noqa: F401,F403
from glass_sm.config.checks import _build, _check_values, _expand_paths, _type_name


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        if node.get(p) is None:  # absent, or a section left empty in the file
            node[p] = {}
        node = node[p]
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: '{p}' is not a section")
    node[parts[-1]] = value


def _flatten(mapping: dict, prefix: str = "") -> dict:
    """``{"models": {"hparams": {"common": {"hidden_size": 8}}}}`` -> ``{"models.hparams.common.hidden_size": 8}``."""
    out = {}
    for k, v in mapping.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with an impossible date (``2000-13-45``) a YAML error at its position (PyYAML raises
    a bare ``ValueError`` without one)."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as e:
            raise yaml.constructor.ConstructorError(None, None, f"invalid date '{node.value}' ({e})",
                                                    node.start_mark) from None


_ParamsLoader.add_constructor("tag:yaml.org,2002:timestamp", _ParamsLoader.construct_yaml_timestamp)


def _yaml_error(e: yaml.YAMLError) -> str:
    """``'line 2, column 1: found character ... (tabs ...)'`` from a PyYAML error."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if "'\\t'" in problem:
        problem += " (indent with spaces: YAML does not allow tabs)"
    context = getattr(e, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{problem}" + (f" ({context})" if context else "")


def _no_duplicate_keys(node, prefix: str = "", seen: set | None = None) -> None:
    """Raise :class:`ConfigError` for a key given twice in one mapping (PyYAML keeps the last one silently)."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            full = f"{prefix}.{key}" if prefix and key is not None else str(key)
            if key is not None and key in lines:
                m = key_node.start_mark
                raise ConfigError(f"line {m.line + 1}, column {m.column + 1}: key '{full}' given twice (first at "
                                  f"line {lines[key] + 1}); keep one")
            if key is not None:
                lines[key] = key_node.start_mark.line
            _no_duplicate_keys(value_node, full, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(item, f"{prefix}[{i}]", seen)


def read_params_file(path: str | os.PathLike) -> dict:
    """The mapping of sections in a params file: UTF-8 YAML, no key twice, not empty.

    Raises
    ------
    ConfigError
        Every fault, naming the file (and the line, or the key): not found, not a file or unreadable, not UTF-8,
        not valid YAML (tabs, indentation, an impossible date, a Python tag ...), a duplicate key, empty, or not a
        mapping at top level.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"parameter file not found: {p}")
    if not p.is_file():
        raise ConfigError(f"{p}: not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{p}: not UTF-8 text (line {line}, byte {e.start}: {data[e.start:e.start + 1]!r}); save "
                          "it as UTF-8") from None
    loader = None
    try:
        loader = _ParamsLoader(text)
        node = loader.get_single_node()
        if node is not None:
            _no_duplicate_keys(node)
        tree = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: {_yaml_error(e)}") from None
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if tree is None:
        raise ConfigError(f"{p}: empty: no parameters (write at least the run section; for the defaults, load no "
                          "file)")
    if not isinstance(tree, dict):
        raise ConfigError(f"{p}: expected a mapping of sections (run:, domain:, ...) at top level, got a "
                          f"{type(tree).__name__}")
    return tree


def load(path: str | os.PathLike | None = None, overrides: dict | None = None) -> Config:
    """Load, validate and resolve a parameter file.

    Every check runs here, before any work: the file is read (:func:`read_params_file`), every key is
    declared, every value has its type and lies in its declared range (:class:`Range`, shown by
    :func:`describe`), values agree with each other (``lat_min < lat_max``, years within the period ...), the run
    name stays inside ``results_dir``, and a twin run fits in memory (:func:`twin_memory_bytes` against
    :func:`memory_limit_bytes`).

    Parameters
    ----------
    path : path-like or None
        YAML file with one mapping (sections ``run``, ``domain`` ...). ``None`` gives the defaults.
    overrides : dict, optional
        ``{"training.epochs": 2}`` (dotted keys) or nested mappings, applied on top of the file leaf by leaf
        (``{"models": {"hparams": {"common": {"hidden_size": 8}}}}`` changes that key only).

    Raises
    ------
    ConfigError
        Any fault of the file or the values; the message starts with the file and names the key (where there
        is one), the value and what is allowed; an unknown key names the closest valid one, or the section it
        belongs in.
    """
    tree: dict = read_params_file(path) if path is not None else {}
    where = f"{path}: " if path is not None else ""
    try:
        for k, v in _flatten(overrides or {}).items():
            _set_dotted(tree, k, v)
        cfg = _build(Config, tree)
        cfg.source_file = str(path) if path is not None else None
        _expand_paths(cfg)
        _check_values(cfg)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as e:  # a value shaped like nothing the checks expect
        raise ConfigError(f"{where}cannot be used: {type(e).__name__}: {e}") from e
    return cfg


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_dict(cfg: Config) -> dict:
    """The resolved parameters as plain YAML-able types."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
        else:
            out[f.name] = _plain(value)
    return out


def dump(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved parameters to ``path`` (YAML)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
    return path


def _hparam_rows() -> list[dict]:
    """Parameter-reference rows of ``models.hparams``: the shared keys, then every model's hyperparameters."""
    common = DEFAULT_HPARAMS[COMMON]
    rows = []
    def spec(name: str, key: str) -> tuple[str, str]:
        tp, bounds = hparam_types(name)[key], hparam_ranges(name).get(key)
        rng = Range(**bounds) if bounds else None
        return ("any" if tp is Any else _type_name(tp, rng)), (str(rng) if rng else "")

    for key, default in common.items():
        users = [n for n in MODEL_REGISTRY if key in MODEL_REGISTRY[n].default_hparams]
        doc = next((hparam_docs(n)[key] for n in users if hparam_docs(n)[key]), "")
        type_name, rng = spec(users[0], key)
        rows.append({"key": f"hparams.{COMMON}.{key}", "type": type_name, "range": rng, "default": default,
                     "doc": f"{doc} Applies to {', '.join(users)} (a model's own section wins)."})
    for name, cls in MODEL_REGISTRY.items():
        own, docs = DEFAULT_HPARAMS.get(name, {}), hparam_docs(name)
        for key in hparam_types(name):
            doc = docs[key] or f"hyperparameter of {getattr(cls, 'display_name', name)}"
            if key == "seed" and key not in own:
                default, doc = "run.seed", f"{doc} Default: run.seed."
            elif key in own:
                default = own[key]
            elif key in common:
                default, doc = common[key], f"{doc} Default: hparams.{COMMON}.{key}."
            else:
                default = cls.default_hparams[key]
            type_name, rng = spec(name, key)
            rows.append({"key": f"hparams.{name}.{key}", "type": type_name, "range": rng, "default": _plain(default),
                         "doc": doc})
    return rows


def describe() -> list[dict]:
    """Every parameter: section, key, type, range, default and documentation (for the params reference page).

    ``range`` is the valid range :func:`load` checks (``'>= 1'``, ``'in [0, 1)'``, with ``'(at least 1 item)'``
    for a list; ``''`` for none); ``type`` includes it (``'int >= 1'``), so a table of types shows it.
    ``models.hparams`` is one row for the mapping, then one row per shared key (``hparams.common.<key>``) and per
    hyperparameter of every registered model (``hparams.<model>.<key>``, default as resolved on an empty file).
    """
    rows = []
    for sec in dataclasses.fields(Config):
        if sec.name == "source_file":
            continue
        cls = sec.default_factory  # type: ignore[misc]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rng = f.metadata.get("range")
            rows.append(
                {
                    "section": sec.name,
                    "key": f.name,
                    "type": _type_name(hints[f.name], rng),
                    "range": str(rng) if rng else "",
                    "default": _plain(default),
                    "doc": f.metadata.get("doc", ""),
                }
            )
            if cls is ModelsConfig and f.name == "hparams":
                rows += [{"section": sec.name, **row} for row in _hparam_rows()]
    return rows
