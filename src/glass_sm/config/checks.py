"""Building a :class:`~glass_sm.config.schema.Config` from a mapping: coercion, ranges, cross-checks, the twin's
memory budget, unknown keys (with the nearest valid one, or the section a key belongs in)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from glass_sm.grid import RES, Domain
from glass_sm.models.registry import COMMON, MODEL_REGISTRY, hparam_ranges, hparam_types, model_hparams

from glass_sm.config.schema import *  # noqa: F401,F403


# ----------------------------------------------------------------------------------------------------------
# Validation machinery
# ----------------------------------------------------------------------------------------------------------
def _type_name(tp: Any, rng: Range | None = None) -> str:
    """``'int'``, ``'list of str'``, ``"'past' | 'centred'"``; with a range ``'int >= 1'``, ``'float in [0, 1)'``,
    ``'list of int >= 1 (at least 1 item)'``, ``'int >= 1 | null'``."""
    bounds = rng.bounds() if rng else ""
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = get_args(tp)
        return " | ".join(_type_name(a, rng) if a is not type(None) else "null" for a in args)
    if tp is type(None):
        return "null"
    if tp is list or get_origin(tp) is list:
        item = get_args(tp)
        text = f"list of {_type_name(item[0])}" if item else "list"
        return " ".join(t for t in (text, bounds, rng.items() if rng else "") if t)
    name = getattr(tp, "__name__", str(tp))
    return f"{name} {bounds}" if bounds else name


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; return it converted (dates, paths)."""
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {_type_name(tp)}{_did_you_mean(value, get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {_type_name(tp)})")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not {_type_name(tp)}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r} ({type(value).__name__})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r} ({type(value).__name__})")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r} ({type(value).__name__})")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key}: expected a path, got {value!r} ({type(value).__name__})")
        return Path(value)
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a date YYYY-MM-DD, got {value!r}")
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r} ({type(value).__name__})")
        return dict(value)
    if tp is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r} ({type(value).__name__})")
        item = get_args(tp)
        return [_coerce(v, item[0], f"{key}[{i}]") for i, v in enumerate(value)] if item else list(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, {} if value is None else value, key)  # "training:" with nothing under it
    raise ConfigError(f"{key}: unsupported parameter type {tp!r}")  # pragma: no cover


def _build(cls: type, mapping: Any, prefix: str = "") -> Any:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {type(mapping).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    for k in mapping:
        if k not in fields:
            full = f"{prefix}.{k}" if prefix else str(k)
            if full in RENAMED:
                raise ConfigError(f"parameter '{full}' has moved: write it as '{RENAMED[full]}'")
            raise _unknown_key(full, k, fields)
    kwargs = {}
    for name, value in mapping.items():
        full = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], full)
        rng = fields[name].metadata.get("range")
        if rng is not None:
            rng.check(kwargs[name], full)
    return cls(**kwargs)


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A run name: a plain folder name, so that ``<results_dir>/<name>`` stays inside ``results_dir``."""


def _check_values(cfg: Config) -> None:
    """Checks across keys (each key's own range is checked by :func:`_build`), in the order of the sections."""
    if not RUN_NAME.fullmatch(cfg.run.name):
        raise ConfigError(f"run.name: {cfg.run.name!r} must be a plain folder name (letters, digits, '.', '_', '-', "
                          f"not starting with '.'): the run's outputs go to <results_dir>/<name>/ and must stay "
                          f"inside results_dir")
    d = cfg.domain
    if not (-90 <= d.lat_min < d.lat_max <= 90):
        raise ConfigError(f"domain: need -90 <= lat_min < lat_max <= 90, got {d.lat_min}..{d.lat_max}")
    if not (-180 <= d.lon_min < d.lon_max <= 180):
        raise ConfigError(f"domain: need -180 <= lon_min < lon_max <= 180, got {d.lon_min}..{d.lon_max}")
    twin_run = cfg.is_twin and cfg.twin.enabled
    _check_resolution(cfg, twin_run)
    if cfg.period.start > cfg.period.end:
        raise ConfigError(f"period: start {cfg.period.start} is after end {cfg.period.end}")
    tw, r = cfg.twin, d.resolution
    if not _whole(tw.cci_resolution / r):
        raise ConfigError(f"twin.cci_resolution: {tw.cci_resolution} is not a multiple of {r:g} deg (domain.resolution, "
                          "the product grid)")
    if not _whole(r / tw.static_resolution):
        raise ConfigError(f"twin.static_resolution: {tw.static_resolution} does not divide {r:g} deg (domain.resolution, "
                          "the product grid); e.g. 0.01 or 0.025 at 0.05 deg")
    if twin_run:
        _check_twin_domain(cfg)
    if cfg.cube.build_tile % cfg.cube.space_chunk:
        raise ConfigError(f"cube.build_tile: {cfg.cube.build_tile} is not a multiple of cube.space_chunk "
                          f"({cfg.cube.space_chunk})")
    years = (cfg.period.start.year, cfg.period.end.year)
    for key, values in (("samples.test_years", cfg.samples.test_years), ("production.years", cfg.production.years)):
        Range(ge=years[0], le=years[1]).check(values, key)
    bins = cfg.models.sm_bins
    if any(b >= a for a, b in zip(bins[1:], bins)):
        raise ConfigError(f"models.sm_bins: {bins} must be increasing (bin edges, m3 m-3)")
    for key, names in (("models.names", cfg.models.names), ("models.split_models", cfg.models.split_models),
                       ("atlstm.length_models", cfg.atlstm.length_models)):
        for name in names:
            if name not in MODEL_REGISTRY:
                raise ConfigError(f"{key}: unknown model '{name}'{_did_you_mean(name, MODEL_REGISTRY)} "
                                  f"(valid: {', '.join(MODEL_REGISTRY)})")
    cfg.models.hparams = resolve_hparams(cfg.models.hparams)
    _check_model_hparams(cfg)
    if cfg.validation.depth_from >= cfg.validation.depth_to:
        raise ConfigError(f"validation: depth_from {cfg.validation.depth_from} m must be above depth_to "
                          f"{cfg.validation.depth_to} m (depths below the surface)")
    if cfg.data.source == "real" and cfg.twin.enabled:
        raise ConfigError("twin.enabled: must be false when data.source is 'real'")
    if cfg.is_twin and cfg.twin.enabled:
        _check_twin_memory(cfg)


def _whole(x: float) -> bool:
    """Whether ``x`` is a whole number >= 1 (to rounding)."""
    return abs(x - round(x)) <= 1e-6 and round(x) >= 1


TWIN_LAT_LIMITS = (-80.0, 84.0)
"""Latitudes a twin domain may span, degrees north (``glass_sm.twin.grids.LAT_LIMITS``, checked by the tests; not
imported here: it loads the twin)."""


def _check_resolution(cfg: Config, twin_run: bool) -> None:
    """``domain.resolution``: the product grid 0.05 deg; the synthetic twin also runs at a coarse resolution that is a
    multiple of 0.05 (whole product cells, so that a 0.05 deg zoom aggregates back onto a coarse cell) and divides
    180 (whole rows from pole to pole, whole columns round the globe). Real data stays at 0.05 deg: its readers and
    the cube are made for the product grid, and nothing here regrids real products to another grid."""
    r = cfg.domain.resolution
    if abs(r - RES) <= 1e-9:
        return
    if not twin_run:
        raise ConfigError(f"domain.resolution: real data runs on the product grid 0.05 only, got {r} (a coarser grid "
                          "is for the synthetic twin: data.source twin, twin.enabled true)")
    if not _whole(r / RES) or not _whole(180.0 / r):
        raise ConfigError(f"domain.resolution: {r} is not a multiple of 0.05 deg that divides 180 deg (e.g. 0.05, 0.25, "
                          "0.5, 1, 2, 3)")


def _check_twin_domain(cfg: Config) -> None:
    """The twin's domain: within :data:`TWIN_LAT_LIMITS`; a domain ending at longitude 180 is global (lon_min -180)."""
    d, out = cfg.domain, Domain.from_config(cfg)
    lo, hi = TWIN_LAT_LIMITS
    if out.south < lo - 1e-9 or out.north > hi + 1e-9:
        raise ConfigError(f"domain.lat_min / domain.lat_max: the synthetic twin covers latitudes {lo:g}..{hi:g} only "
                          f"(it never reaches the poles), got {out.south:g}..{out.north:g} (snapped outward to whole "
                          f"{d.resolution:g} deg cells)")
    if out.east >= 180 - 1e-9 and out.west > -180 + 1e-9:
        raise ConfigError(f"domain.lon_max: a twin domain ending at longitude 180 must be global (domain.lon_min -180): "
                          f"its ERA5-Land-like points would include the one at 180 deg, which the readers take for "
                          f"-180; end it at {180 - 2 * d.resolution:g} or make it global")


def _check_model_hparams(cfg: Config) -> None:
    """Combinations of one model's hyperparameters its class refuses (its optional ``check_hparams``)."""
    for name, cls in MODEL_REGISTRY.items():
        check = getattr(cls, "check_hparams", None)
        if check is None:
            continue
        try:
            check({**cls.default_hparams, **model_hparams(name, cfg)})
        except ValueError as e:
            raise ConfigError(f"models.hparams.{name}: {e} (set in models.hparams.{name} or "
                              f"models.hparams.{COMMON})") from None


# ----------------------------------------------------------------------------------------------------------
# Memory of the synthetic twin
# ----------------------------------------------------------------------------------------------------------
TWIN_BYTES_PER_CELL_DAY = 160
"""Peak memory of generating the twin per simulated cell and day, bytes: :func:`glass_sm.twin.generate_twin` holds
the simulation (:func:`glass_sm.twin.truth.simulate_truth`: every weather, vegetation and soil-moisture field of the
period and its spin-up year, ``(time, lat, lon)`` float32 and bool, 62-66 bytes per cell-day at its own peak) while
:func:`glass_sm.twin.sensors.simulate_avhrr` builds the AVHRR-like fields and their temporaries, its peak; measured
with ``tracemalloc`` (twin version 3, 32 x 32 simulated cells, 2 years + the spin-up year): 129 bytes per simulated
cell-day, +25 % margin. ``tests/unit/test_config.py`` checks the estimate against a measurement."""

TWIN_BYTES_PER_FINE_PIXEL = 1750
"""Peak memory of the twin's static fields per pixel of its fine grid (``twin.static_resolution`` over the simulation
grid), bytes: :func:`glass_sm.twin.climate.simulate_static` evaluates its random fields and the climate layout on
the fine grid in float64; measured with ``tracemalloc`` at 1 deg with 0.1 and 0.05 deg fine pixels (26 400 and
105 600 pixels): 800 (``twin.climate: gradient``) to 1350 (``earth``) bytes per added pixel, +25 % margin. At
1 deg with the default 0.01 deg pixels that is 1.75 MB per cell: a coarse run needs a coarser
``twin.static_resolution``."""

TWIN_SPINUP_DAYS = 365
"""The twin's spin-up before the period, days (``glass_sm.twin.truth.SPINUP_DAYS``, checked by the tests)."""

MEMORY_FRACTION = 0.75
"""Share of this machine's physical memory the twin may plan to use (:func:`memory_limit_bytes`)."""


def twin_sim_shape(cfg: Config) -> tuple[int, int]:
    """(rows, columns) of the twin's simulation grid, an upper bound: the domain's cells (``domain.resolution``)
    grown on each side to whole ESA-CCI-like cells (``twin.cci_resolution``) and by at least one cell for the
    ERA5-Land-like points at twice the spacing (the exact grid is :func:`glass_sm.twin.twin_grids`; not imported
    here, it loads the twin's writers)."""
    out = Domain.from_config(cfg)
    cci = out.expand_to_multiple(round(cfg.twin.cci_resolution / cfg.domain.resolution))
    north, west = out.row0 - cci.row0, out.col0 - cci.col0
    south = cci.row0 + cci.nrows - out.row0 - out.nrows
    east = cci.col0 + cci.ncols - out.col0 - out.ncols
    return out.nrows + max(north, 1) + max(south, 1), out.ncols + max(west, 1) + max(east, 1)


def twin_memory_bytes(cfg: Config) -> int:
    """Estimated peak memory of generating the twin, bytes: :data:`TWIN_BYTES_PER_CELL_DAY` x the simulated cells
    (:func:`twin_sim_shape`) x the days of the period and of the spin-up year, plus :data:`TWIN_BYTES_PER_FINE_PIXEL`
    x the pixels of the static fields' fine grid (``(domain.resolution / twin.static_resolution)^2`` per cell)."""
    rows, cols = twin_sim_shape(cfg)
    days = (cfg.period.end - cfg.period.start).days + 1 + TWIN_SPINUP_DAYS
    fine = round(cfg.domain.resolution / cfg.twin.static_resolution) ** 2
    return TWIN_BYTES_PER_CELL_DAY * rows * cols * days + TWIN_BYTES_PER_FINE_PIXEL * rows * cols * fine


MEMORY_LIMIT_ENV = "GLASS_SM_MAX_MEMORY_GIB"
"""Environment variable overriding :func:`memory_limit_bytes`, GiB (e.g. to plot on a laptop the figures of a twin
generated on a larger machine)."""


def memory_limit_bytes() -> int | None:
    """The memory a run may plan to use, bytes: ``$GLASS_SM_MAX_MEMORY_GIB`` GiB when set, else
    :data:`MEMORY_FRACTION` of this machine's physical memory (None where the OS does not say)."""
    if os.environ.get(MEMORY_LIMIT_ENV):
        text = os.environ[MEMORY_LIMIT_ENV]
        try:
            gib = float(text)
        except ValueError:
            gib = math.nan
        if not gib > 0 or not math.isfinite(gib):
            raise ConfigError(f"environment variable {MEMORY_LIMIT_ENV}: {text!r} is not a positive number of GiB")
        return int(gib * 2**30)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return int(MEMORY_FRACTION * total) if total > 0 else None


def _check_twin_memory(cfg: Config) -> None:
    need, limit = twin_memory_bytes(cfg), memory_limit_bytes()
    if limit is None or need <= limit:
        return
    rows, cols = twin_sim_shape(cfg)
    days = (cfg.period.end - cfg.period.start).days + 1
    fine = round(cfg.domain.resolution / cfg.twin.static_resolution) ** 2
    source = (f"${MEMORY_LIMIT_ENV}" if os.environ.get(MEMORY_LIMIT_ENV) else
              f"{MEMORY_FRACTION:.0%} of this machine's memory; set ${MEMORY_LIMIT_ENV} to change it")
    raise ConfigError(
        f"domain, period: the synthetic twin of this domain and period needs about {need / 2**30:.1f} GiB of memory "
        f"({rows} x {cols} simulated cells x ({days} days + {TWIN_SPINUP_DAYS} spin-up) x "
        f"{TWIN_BYTES_PER_CELL_DAY} bytes, + {fine} static pixels of twin.static_resolution per cell x "
        f"{TWIN_BYTES_PER_FINE_PIXEL} bytes), over the limit {limit / 2**30:.1f} GiB ({source}): shrink the domain or "
        f"the period, coarsen twin.static_resolution (or use data.source: real with twin.enabled: false)")


def _did_you_mean(word, valid) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``valid`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(v) for v in valid], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unknown_key(full: str, key, valid) -> ConfigError:
    """The error for an undeclared key ``full`` (dotted): where the key belongs when another section declares it,
    else the closest valid key; then all the valid keys here."""
    homes = [h for h in _key_homes().get(str(key), []) if h != full]
    hint = f": it belongs in {' or '.join(homes)}" if homes else _did_you_mean(key, valid)
    return ConfigError(f"unknown parameter '{full}'{hint} (valid keys here: {', '.join(map(str, valid))})")


def _key_homes() -> dict[str, list[str]]:
    """Key -> the dotted keys declaring it: every section's keys, and every model hyperparameter (as
    ``models.hparams.common.<key>`` when several models declare it)."""
    homes: dict[str, list[str]] = {}
    for sec in dataclasses.fields(Config):
        if dataclasses.is_dataclass(sec.default_factory):
            for f in dataclasses.fields(sec.default_factory):
                homes.setdefault(f.name, []).append(f"{sec.name}.{f.name}")
    users: dict[str, list[str]] = {}
    for name, cls in MODEL_REGISTRY.items():
        for key in cls.default_hparams:
            users.setdefault(key, []).append(name)
    for key, names in users.items():
        homes.setdefault(key, []).append(f"models.hparams.{COMMON if len(names) > 1 else names[0]}.{key}")
    return homes


def _hparam_specs(section: str) -> dict[str, list[tuple[Any, Range | None]]]:
    """Key -> (type, range) of every registered class declaring it (``common``: all the classes; else the one)."""
    names = list(MODEL_REGISTRY) if section == COMMON else [section]
    out: dict[str, list] = {}
    for name in names:
        ranges = hparam_ranges(name)
        for key, tp in hparam_types(name).items():
            out.setdefault(key, []).append((tp, Range(**ranges[key]) if key in ranges else None))
    return out


def resolve_hparams(hparams: dict) -> dict:
    """``models.hparams`` merged onto :data:`DEFAULT_HPARAMS`, every section, key and value checked.

    Parameters
    ----------
    hparams : dict
        ``{"common": {...}, "<model>": {...}}`` as written in a parameter file (a section may be empty).

    Returns
    -------
    dict
        The merged mapping (``common`` first, then the models' sections in file order), values converted
        (an integer given for a float hyperparameter becomes a float).

    Raises
    ------
    ConfigError
        A section that is neither ``common`` nor a registered model, a key the model's class does not declare
        (``common``: that no registered class declares), each naming the closest valid one; or a value of the
        wrong type or out of the range the class declares (``hparam_ranges``), naming the key.
    """
    merged = copy.deepcopy(DEFAULT_HPARAMS)
    sections = [COMMON, *MODEL_REGISTRY]
    for section, values in hparams.items():
        where = f"models.hparams.{section}"
        if section not in sections:
            raise _unknown_key(where, section, sections)
        if values is None:  # "xgboost:" with nothing under it
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping of hyperparameters, got {values!r}")
        merged.setdefault(section, {}).update(values)
    for section in [s for s in merged if s in sections]:
        specs = _hparam_specs(section)
        for key, value in merged[section].items():
            where = f"models.hparams.{section}.{key}"
            if key not in specs:
                raise _unknown_key(where, key, specs)
            for tp, rng in specs[key]:
                if tp is not Any:
                    merged[section][key] = _coerce(value, tp, where)
                if rng is not None:
                    rng.check(merged[section][key], where)
    return merged


def _expand_paths(cfg: Config) -> None:
    root = cfg.data.root or (Path(os.environ["GLASS_SM_DATA"]) if os.environ.get("GLASS_SM_DATA") else None)
    subs = {"raw": str(cfg.results / "data" / "raw"), "results": str(cfg.results)}
    for f in dataclasses.fields(DataConfig):
        value = getattr(cfg.data, f.name)
        if not isinstance(value, Path) or f.name == "root":
            continue
        text = str(value)
        if "{root}" in text:
            if root is None:
                raise ConfigError(f"data.{f.name}: uses {{root}} but neither data.root nor GLASS_SM_DATA is set")
            text = text.replace("{root}", str(root))
        for k, v in subs.items():
            text = text.replace("{" + k + "}", v)
        setattr(cfg.data, f.name, Path(text))
