"""Checkpoints: the one home of the checkpoint format, and the production checkpoints stage 04 applies to a cube.

A checkpoint (:func:`save_checkpoint`, format :data:`CHECKPOINT_FORMAT`) is one ``torch.save`` file holding only
tensors and plain Python values, so it loads with ``torch.load(path, weights_only=True)`` (no pickled code runs):
``format``, ``name`` (registry key), ``n_features``, ``window``, ``hparams``, ``extra``, ``torch_version``,
``glass_sm_version`` and ``state_dict``; plus a sibling ``<stem>.json`` with the same metadata (no weights) for
humans and for tools that do not import torch, and the ``sha256`` of the ``.pt`` file. :func:`load_model_weights`
rebuilds the model through the registry.

Integrity: both loaders verify the ``.pt`` file against the ``sha256`` its sidecar recorded when it was saved and
refuse a file that differs (one flipped bit), that torch cannot read (truncated, random bytes, pickled code) or
that holds no checkpoint, with a :class:`CheckpointIntegrityError` naming the file. A checkpoint whose sidecar
records no hash (written before the hash was recorded) loads with one :class:`UnverifiedCheckpointWarning`.

Hyperparameters: :func:`save_checkpoint` records every hyperparameter of the class (the ones given over the
class defaults), so a later change of a default cannot change a reloaded model. A checkpoint written before a
hyperparameter existed loads with the value that reproduces the model it holds (:data:`LEGACY_HPARAMS`: an
``atlstm`` without ``head`` had the ``[c; h_L]`` head, ``'context_last'``).

The production contract (``book/design.md``, "Production checkpoints"): ``results/<run>/models/atlstm_final.pt``
is a :func:`save_checkpoint` file whose ``extra`` holds the preprocessing, so the exact inputs of training can be
rebuilt from a cube:

``features`` (names in the order of the last window axis), ``units`` (per feature), ``normalizer``
(:meth:`glass_sm.data.samples.Normalizer.to_dict`), ``window`` (L, days), ``window_mode`` (``'past'`` or
``'centred'``), ``add_doy``, ``include_filled_flags``, ``train_period``, ``split``, ``metrics``, ``source``.

Siblings: ``<stem>.json`` (the same metadata without weights, written by ``save_checkpoint``) and ``<stem>.md``
(a model card). :func:`save_production_checkpoint` writes all three, each atomically
(:func:`glass_sm.paths.atomic_write`).

:func:`load_checkpoint` rebuilds the model through the registry from a ``torch.load(weights_only=True)`` read
(no pickled code runs) and returns a :class:`LoadedModel`; :meth:`LoadedModel.check_cube` refuses a cube whose
variables, units or value ranges do not match what the model was trained on, naming the offending feature.

>>> lm = load_checkpoint("results/demo/models/atlstm_final.pt")   # doctest: +SKIP
>>> lm.check_cube(cube.open_cube("results/demo/data/cube.zarr"))   # doctest: +SKIP
>>> sm = lm.predict(x_raw)    # (batch, L, F) raw inputs -> (batch,) m3 m-3   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import glass_sm
from glass_sm.data import DEFAULT_UNITS, Normalizer, window_offsets
from glass_sm.models.registry import MODEL_REGISTRY, build_model
from glass_sm.paths import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointIntegrityError",
    "CheckpointMismatchError",
    "LoadedModel",
    "LEGACY_HPARAMS",
    "checkpoint_hparams",
    "file_sha256",
    "load_checkpoint",
    "load_model_weights",
    "model_card_markdown",
    "same_units",
    "save_checkpoint",
    "save_production_checkpoint",
    "UnverifiedCheckpointWarning",
    "verify_checkpoint_file",
]

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout written by :func:`save_checkpoint`."""

# Spellings of the same unit found in the products we read (CF canonical form first).
_UNIT_ALIASES = {
    "m3 m-3": ("m3 m-3", "m3/m3", "m**3 m**-3", "m^3 m^-3", "m3.m-3", "cm3 cm-3", "cm3/cm3"),
    "1": ("1", "dimensionless", "", "-", "fraction", "unitless"),
    "K": ("K", "kelvin", "degK"),
    "m": ("m", "metre", "meter", "meters", "metres"),
}


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit a cube (missing feature, other units, other statistics) or is inconsistent."""


class CheckpointIntegrityError(CheckpointMismatchError):
    """A checkpoint file is damaged or foreign: its bytes differ from the hash recorded when it was saved, torch
    cannot read it, or it holds no checkpoint. The message names the file."""


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint was loaded without an integrity check: its sidecar records no ``sha256`` (an older run)."""


def _canonical_unit(units) -> str:
    u = re.sub(r"\s+", " ", str(units if units is not None else "").strip())
    for canon, spellings in _UNIT_ALIASES.items():
        if u in spellings or u.lower() in (s.lower() for s in spellings):
            return canon
    return u


def same_units(a, b) -> bool:
    """Whether two unit strings mean the same unit (``'m3 m-3'`` == ``'m**3 m**-3'``, ``'1'`` == ``''``)."""
    return _canonical_unit(a) == _canonical_unit(b)


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(eq=False)
class LoadedModel:
    """A production model with its preprocessing, as returned by :func:`load_checkpoint`.

    Attributes
    ----------
    model : torch.nn.Module
        The network, in eval mode, on the CPU; takes *normalised* windows ``(batch, L, F)``.
    name : str
        Registry key (``'atlstm'``).
    hparams : dict
        Hyperparameters it was built with.
    normalizer : glass_sm.data.samples.Normalizer
        Feature statistics fitted on the training split (``normalizer.spec`` lists the features and units).
    features : list of str
        Feature names in window order (``normalizer.names``).
    window : int
        ``L``, days.
    window_mode : str
        ``'past'`` (the target is the last day) or ``'centred'``.
    extra : dict
        The checkpoint's whole ``extra`` mapping (metrics, split, train period, source ...).
    path : pathlib.Path
        The ``.pt`` file.
    sha256 : str
        SHA-256 of the ``.pt`` file, written into every product file for provenance.
    """

    model: nn.Module
    name: str
    hparams: dict
    normalizer: object
    features: list
    window: int
    window_mode: str
    extra: dict = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""

    @property
    def spec(self):
        """The :class:`glass_sm.data.samples.FeatureSpec` of the inputs."""
        return self.normalizer.spec

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def offsets(self) -> np.ndarray:
        """Day offsets of the window relative to the target day (``-(L-1)..0`` for ``'past'``)."""
        return window_offsets(self.window, self.window_mode)

    # ---- consistency ------------------------------------------------------------------------------------
    def check_consistency(self) -> None:
        """Raise :class:`CheckpointMismatchError` if the checkpoint contradicts itself (features, window)."""
        where = f"checkpoint {self.path}" if self.path else "checkpoint"
        names = list(self.normalizer.names)
        if list(self.features) != names:
            raise CheckpointMismatchError(
                f"{where}: extra['features'] {list(self.features)} differ from the normalizer's features {names}")
        n_model = getattr(self.model, "n_features", len(names))
        if n_model != len(names):
            raise CheckpointMismatchError(
                f"{where}: the model takes {n_model} features per step but the feature list has {len(names)} "
                f"({names})")
        w_model = getattr(self.model, "window", self.window)
        if int(w_model) != int(self.window):
            raise CheckpointMismatchError(
                f"{where}: window inconsistent: extra['window'] = {self.window} days but the model was built for "
                f"{w_model} days")
        if self.window_mode not in ("past", "centred", "centered"):
            raise CheckpointMismatchError(f"{where}: window_mode {self.window_mode!r} is not 'past' or 'centred'")
        units = self.extra.get("units")
        if isinstance(units, dict):
            for n in names:
                if n in units and n in self.spec.units and not same_units(units[n], self.spec.units[n]):
                    raise CheckpointMismatchError(
                        f"{where}: feature '{n}' has units {units[n]!r} in extra['units'] but "
                        f"{self.spec.units[n]!r} in the normalizer")

    def check_cube(self, cube, check_statistics: bool = True, max_sd: float = 10.0) -> None:
        """Check that a cube provides the model's inputs as they were in training.

        Checks, in order: the checkpoint is self-consistent (:meth:`check_consistency`); every cube variable
        the features read exists; its ``units`` attribute means the same unit as in training; and (with
        ``check_statistics``) the cube's mean over a small sample (3 days x a block of at most 32 x 32 cells
        around the middle land pixel; a few MB read even from a global cube) lies within ``max_sd`` training
        standard deviations of the training mean, which catches a variable in other units or swapped with
        another despite its attributes.

        Parameters
        ----------
        cube : xarray.Dataset
            The analysis-ready cube (``book/design.md``); may be lazy.
        check_statistics : bool
            Also compare sampled values with the normalizer's statistics.
        max_sd : float
            Allowed distance of the sampled mean from the training mean, in training standard deviations.

        Raises
        ------
        CheckpointMismatchError
            Naming the feature and what differs (missing, units, statistics).
        """
        self.check_consistency()
        spec = self.spec
        found = sorted(map(str, cube.data_vars))
        for v in spec.cube_variables:
            if v not in cube.variables:
                raise CheckpointMismatchError(
                    f"feature '{v}' of the checkpoint ({self.path}) is missing from the cube; cube variables: "
                    f"{found}")
        for v in spec.cube_variables:
            want = spec.units.get(v, DEFAULT_UNITS.get(v, ""))
            got = cube[v].attrs.get("units", DEFAULT_UNITS.get(v))
            if got is not None and not same_units(got, want):
                raise CheckpointMismatchError(
                    f"feature '{v}': the cube's units are {got!r} but the model was trained on {want!r} "
                    f"(checkpoint {self.path}); convert the cube variable or retrain")
        if check_statistics:
            self._check_statistics(cube, max_sd)

    def _check_statistics(self, cube, max_sd: float) -> None:
        spec, norm = self.spec, self.normalizer
        if "land_mask" not in cube.variables:
            return
        mask = np.asarray(cube["land_mask"].transpose("lat", "lon").values)
        rows, cols = np.nonzero(np.nan_to_num(mask) == 1)
        if rows.size == 0:
            return
        k = rows.size // 2
        r0, c0 = max(0, int(rows[k]) - 16), max(0, int(cols[k]) - 16)
        box = dict(lat=slice(r0, r0 + 32), lon=slice(c0, c0 + 32))
        land = mask[box["lat"], box["lon"]] == 1
        nt = cube.sizes.get("time", 1)
        days = sorted({0, nt // 2, nt - 1})
        for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
            if kind not in ("dynamic", "static"):
                continue
            da = cube[name].isel(**box)
            if "time" in da.dims:
                da = da.isel(time=days).transpose("time", "lat", "lon")
                vals = np.asarray(da.values, np.float64)[:, land]
            else:
                vals = np.asarray(da.transpose("lat", "lon").values, np.float64)[land]
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                continue
            dist = abs(vals.mean() - norm.mean[j]) / norm.sd[j]
            if dist > max_sd:
                raise CheckpointMismatchError(
                    f"feature '{name}': statistic mismatch: the cube's sampled mean {vals.mean():.4g} "
                    f"{spec.units.get(name, '')} is {dist:.1f} training sd from the training mean "
                    f"{norm.mean[j]:.4g} (sd {norm.sd[j]:.3g}); other units or another variable than in training?")

    # ---- prediction -------------------------------------------------------------------------------------
    def predict_normalized(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Soil moisture ``(batch,)`` float32, m3 m-3, from *normalised* windows ``(batch, L, F)``."""
        x = np.asarray(x, np.float32)
        self._check_shape(x)
        out = np.empty(len(x), np.float32)
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                out[s:s + batch_size] = self.model(torch.from_numpy(np.ascontiguousarray(x[s:s + batch_size]))).numpy()
        return out

    def predict(self, x_raw: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Soil moisture ``(batch,)`` float32, m3 m-3, from raw windows ``(batch, L, F)`` in the features' units.

        The windows are normalised with the checkpoint's :attr:`normalizer` (the features in the order of
        :attr:`features`: albedo dimensionless, LST in K, soil moisture in m3 m-3, elevation in m, ...).
        """
        x_raw = np.asarray(x_raw)
        self._check_shape(x_raw)
        out = np.empty(len(x_raw), np.float32)
        for s in range(0, len(x_raw), batch_size):
            out[s:s + batch_size] = self.predict_normalized(self.normalizer.apply(x_raw[s:s + batch_size]),
                                                            batch_size)
        return out

    def _check_shape(self, x: np.ndarray) -> None:
        if x.ndim != 3 or x.shape[1:] != (self.window, self.n_features):
            raise ValueError(f"windows must be (batch, {self.window}, {self.n_features}) for features "
                             f"{self.features}, got {x.shape}")


def _plain(value, where: str = "extra"):
    """``value`` as JSON-compatible Python types (NumPy scalars and arrays converted); TypeError otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {str(key): _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise TypeError(f"{where}: {type(value).__name__} is not a plain value (str, int, float, bool, list, dict)")


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, name: str, hparams: dict, extra: dict | None = None
) -> Path:
    """Write a torch model's weights and how to rebuild it, loadable with ``torch.load(weights_only=True)``.

    The file holds a dict: ``format`` (:data:`CHECKPOINT_FORMAT`), ``name`` (registry key), ``n_features``,
    ``window``, ``hparams`` (dict), ``extra`` (dict, e.g. normalisation statistics or scores), ``torch_version``,
    ``glass_sm_version`` and ``state_dict`` (CPU tensors). A sibling ``<path stem>.json`` repeats everything but
    the weights, plus ``n_parameters`` and the ``sha256`` of the ``.pt`` file (verified by the loaders). Both are
    written atomically (:func:`glass_sm.paths.atomic_write`).

    Parameters
    ----------
    path : path-like
        Checkpoint file, conventionally ``results/<run>/models/<name>.pt``.
    model : torch.nn.Module
        Model of the registry.
    name : str
        Its key in :data:`~glass_sm.models.MODEL_REGISTRY`.
    hparams : dict
        Hyperparameters it was built with (``build_model(name, n_features, window, **hparams)``); recorded over
        the class's ``default_hparams``, so the file names every setting.
    extra : dict, optional
        Plain metadata (str, int, float, bool, None, lists and dicts of them; NumPy values are converted).

    Returns
    -------
    Path
        The checkpoint file.

    Raises
    ------
    ValueError
        ``model`` is not an instance of the class registered as ``name``, or is the class of another name.
    TypeError
        A value of ``hparams`` or ``extra`` is not plain (nothing is written).
    """
    path = Path(path)
    if not isinstance(model, MODEL_REGISTRY.get(name, ())):
        raise ValueError(f"model is a {type(model).__name__}, not the registry's '{name}' ({list(MODEL_REGISTRY)})")
    registered_as = [key for key, cls in MODEL_REGISTRY.items() if type(model) is cls]
    if registered_as and name not in registered_as:  # e.g. an atlstm_cl saved as 'atlstm' would reload wrongly
        raise ValueError(f"model is a {type(model).__name__}, registered as {registered_as[0]!r}, not {name!r}")
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "name": name,
        "n_features": int(model.n_features),
        "window": int(model.window),
        "hparams": _plain({**MODEL_REGISTRY[name].default_hparams, **dict(hparams)}, "hparams"),
        "extra": _plain(dict(extra or {})),
        "torch_version": str(torch.__version__),
        "glass_sm_version": glass_sm.__version__,
    }
    state_dict = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    n_parameters = sum(p.numel() for p in model.parameters())
    with atomic_write(path) as tmp:
        torch.save({**metadata, "state_dict": state_dict}, tmp)
        sha = file_sha256(tmp)
    text = json.dumps({**metadata, "n_parameters": n_parameters, "sha256": sha}, indent=2, allow_nan=True) + "\n"
    with atomic_write(path.with_suffix(".json")) as tmp:
        tmp.write_text(text)
    return path


_REQUIRED = ("format", "name", "n_features", "window", "hparams", "state_dict")

LEGACY_HPARAMS: dict[str, dict] = {"atlstm": {"head": "context_last"}}
"""Per registry name, the value of a hyperparameter a checkpoint lacks because it was written before the
setting existed: the behaviour the saved weights were trained with (not today's default)."""


def checkpoint_hparams(name: str, hparams: dict) -> dict:
    """A checkpoint's hyperparameters with :data:`LEGACY_HPARAMS` filled in where the checkpoint predates them.

    Parameters
    ----------
    name : str
        The checkpoint's registry key.
    hparams : dict
        Its recorded hyperparameters.

    Returns
    -------
    dict
        ``hparams`` plus the legacy values of the keys it lacks.
    """
    return {**LEGACY_HPARAMS.get(name, {}), **dict(hparams)}


def recorded_sha256(path: str | os.PathLike) -> str | None:
    """The ``sha256`` of a checkpoint recorded in its sidecar ``<stem>.json`` when it was saved (None when the
    sidecar is absent or records none: an older checkpoint).

    Raises
    ------
    CheckpointIntegrityError
        The sidecar exists but is not a JSON mapping (naming it).
    """
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointIntegrityError(f"{sidecar}: the sidecar of checkpoint {path} is not valid JSON "
                                       f"({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointIntegrityError(f"{sidecar}: the sidecar of checkpoint {path} is not a JSON mapping")
    sha = meta.get("sha256")
    return str(sha) if sha else None


def verify_checkpoint_file(path: str | os.PathLike) -> str:
    """Check a checkpoint file against the ``sha256`` its sidecar recorded when it was saved; return its hash.

    Parameters
    ----------
    path : path-like
        The ``.pt`` file.

    Returns
    -------
    str
        SHA-256 of the file's bytes.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointIntegrityError
        The file's hash differs from the recorded one, naming the file and both hashes (or the sidecar is
        unreadable).

    Warns
    -----
    UnverifiedCheckpointWarning
        Once, naming the file, when the sidecar records no hash (a checkpoint saved before hashes were recorded).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (stage 03 writes results/<run>/models/"
                                "atlstm_final.pt)")
    actual, recorded = file_sha256(path), recorded_sha256(path)
    if recorded is None:
        warnings.warn(f"{path}: its sidecar {path.with_suffix('.json').name} records no sha256 (saved by an older "
                      "version): loaded without an integrity check; save it again to record one",
                      UnverifiedCheckpointWarning, stacklevel=4)
    elif actual != recorded:
        raise CheckpointIntegrityError(
            f"{path}: sha256 {actual} differs from the sha256 {recorded} recorded in "
            f"{path.with_suffix('.json').name} when it was saved: the file was changed or damaged after saving "
            "(or its save was interrupted); re-run the stage that wrote it")
    return actual


def _first_line(e: BaseException, limit: int = 300) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def _unreadable_reason(e: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a few words (never torch's advice to drop weights_only)."""
    text = str(e)
    if "Unsupported global" in text:
        return "it holds pickled Python objects, which a weights-only checkpoint never contains (refused; nothing ran)"
    detail = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", text, re.S)
    if detail:
        return f"not torch's format ({' '.join(detail.group(1).split())[:200]})"
    if isinstance(e, EOFError):
        return "the file ends early"
    return f"{type(e).__name__}: {_first_line(e).split('. ')[0]}"


def _read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict, str]:
    """The dict of a verified checkpoint file (weights-only read) and its sha256, after checking its format."""
    sha = verify_checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types (UnpicklingError, RuntimeError, OSError ...)
        why = "an empty file" if path.stat().st_size == 0 else _unreadable_reason(e)
        raise CheckpointIntegrityError(f"{path}: not a readable checkpoint (truncated, damaged or another kind of "
                                       f"file): {why}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointIntegrityError(f"{path}: not a checkpoint: a {type(checkpoint).__name__}, not a mapping")
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(f"{path}: checkpoint format {checkpoint.get('format')!r}, expected "
                                      f"{CHECKPOINT_FORMAT}")
    missing = [k for k in _REQUIRED if k not in checkpoint]
    if missing:
        raise CheckpointIntegrityError(f"{path}: not a checkpoint: missing {missing} (keys: {sorted(checkpoint)})")
    return checkpoint, sha


def _rebuild(checkpoint: dict, path: Path) -> nn.Module:
    """The registry model of a checkpoint dict with its weights, in eval mode."""
    try:
        model = build_model(checkpoint["name"], checkpoint["n_features"], checkpoint["window"],
                            **checkpoint_hparams(checkpoint["name"], checkpoint["hparams"]))
        model.load_state_dict(checkpoint["state_dict"])
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        raise CheckpointIntegrityError(f"{path}: the weights do not fit the model '{checkpoint['name']}' it "
                                       f"names: {_first_line(e)}") from None
    return model.eval()


def load_model_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from a :func:`save_checkpoint` file (``torch.load(weights_only=True)``, registry build).

    Parameters
    ----------
    path : path-like
        Checkpoint file.
    map_location : str or torch.device
        Device of the returned model.

    Returns
    -------
    torch.nn.Module
        The model in eval mode.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointIntegrityError
        The file differs from the hash recorded when it was saved, is not readable or holds no checkpoint, or
        its weights do not fit the model it names (each naming the file).
    CheckpointMismatchError
        The file is not of :data:`CHECKPOINT_FORMAT` (a ``ValueError``).

    Warns
    -----
    UnverifiedCheckpointWarning
        The sidecar records no hash (see :func:`verify_checkpoint_file`).
    """
    path = Path(path)
    checkpoint, _ = _read_checkpoint(path, map_location)
    return _rebuild(checkpoint, path).to(map_location)


def load_checkpoint(path: str | os.PathLike) -> LoadedModel:
    """Load a production checkpoint (model + preprocessing) written by :func:`save_production_checkpoint`.

    Also accepts a plain :func:`save_checkpoint` file whose ``extra`` follows the contract
    of ``book/design.md`` (at least ``normalizer``).

    Parameters
    ----------
    path : path-like
        The ``.pt`` file.

    Returns
    -------
    LoadedModel
        With the model in eval mode on the CPU and ``sha256`` of the file.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointIntegrityError
        The file differs from the hash recorded when it was saved, is not readable or holds no checkpoint (each
        naming the file).
    CheckpointMismatchError
        The checkpoint lacks the normalizer or contradicts itself (features, window).

    Warns
    -----
    UnverifiedCheckpointWarning
        The sidecar records no hash (see :func:`verify_checkpoint_file`).
    """
    path = Path(path)
    ckpt, sha = _read_checkpoint(path)
    extra = dict(ckpt.get("extra") or {})
    if "normalizer" not in extra:
        raise CheckpointMismatchError(f"{path}: extra has no 'normalizer' (keys: {sorted(extra)}); a production "
                                      "checkpoint must carry the training statistics")
    normalizer = Normalizer.from_dict(extra["normalizer"])
    loaded = LoadedModel(
        model=_rebuild(ckpt, path),
        name=ckpt["name"],
        hparams=checkpoint_hparams(ckpt["name"], ckpt["hparams"]),
        normalizer=normalizer,
        features=list(extra.get("features", normalizer.names)),
        window=int(extra.get("window", ckpt["window"])),
        window_mode=str(extra.get("window_mode", "past")),
        extra=extra,
        path=path,
        sha256=sha,
    )
    loaded.check_consistency()
    return loaded


def _md_value(value) -> str:
    if isinstance(value, dict):
        return "\n".join(f"- **{k}**: {_md_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "\n".join(f"- {_md_inline(v)}" for v in value)
    return str(value)


def _md_inline(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_md_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_md_inline(v) for v in value)
    return str(value)


def model_card_markdown(path: Path, name: str, hparams: dict, normalizer, window: int, window_mode: str,
                        extra: dict, model_card: dict, n_parameters: int) -> str:
    """The model card text: the free sections of ``model_card`` + architecture, inputs and statistics."""
    title = model_card.get("title", f"Model card: {name} ({path.name})")
    lines = [f"# {title}", ""]
    for key, value in model_card.items():
        if key == "title":
            continue
        lines += [f"## {str(key).replace('_', ' ').capitalize()}", "", _md_value(value), ""]
    lines += ["## Architecture", "", f"- registry name: `{name}`, {n_parameters} parameters",
              f"- hyperparameters: {_md_inline(hparams)}",
              f"- window: {window} days, `{window_mode}`", ""]
    lines += ["## Inputs (in window order) and training statistics", "",
              "| # | feature | kind | units | mean | sd |", "|---|---|---|---|---|---|"]
    spec = normalizer.spec
    for i, (n, k) in enumerate(zip(spec.names, spec.kinds)):
        lines.append(f"| {i} | `{n}` | {k} | {spec.units.get(n, '')} | {normalizer.mean[i]:.6g} | "
                     f"{normalizer.sd[i]:.6g} |")
    lines.append("")
    for key in ("train_period", "split", "source", "metrics"):
        if key in extra:
            lines += [f"## {key.replace('_', ' ').capitalize()}", "", _md_value(extra[key]), ""]
    lines += ["## Provenance", "", f"- SHA-256 of `{path.name}`: `{file_sha256(path)}`",
              "- load with `glass_sm.models.load_checkpoint(path)` (weights-only torch.load)", ""]
    return "\n".join(lines)


def save_production_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    name: str,
    hparams: dict,
    normalizer,
    features: list | None = None,
    window: int | None = None,
    window_mode: str = "past",
    *,
    add_doy: bool | None = None,
    include_filled_flags: bool | None = None,
    train_period: list | None = None,
    split=None,
    metrics: dict | None = None,
    source: str = "synthetic twin",
    model_card: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a production checkpoint: ``<path>`` (.pt), ``<stem>.json`` and the model card ``<stem>.md``.

    Each file is written through :func:`glass_sm.paths.atomic_write`, so a reader never sees a partial file.

    Parameters
    ----------
    path : path-like
        ``results/<run>/models/atlstm_final.pt`` by convention.
    model : torch.nn.Module
        A registry model taking normalised windows ``(batch, L, F)``.
    name : str
        Its registry key.
    hparams : dict
        Hyperparameters it was built with.
    normalizer : glass_sm.data.samples.Normalizer
        Statistics fitted on the training split (features in window order, with units).
    features : list of str, optional
        Feature names in window order (default and required to equal ``normalizer.names``).
    window : int, optional
        ``L``, days (default ``model.window``).
    window_mode : {'past', 'centred'}
        Window placement relative to the target day.
    add_doy, include_filled_flags : bool, optional
        Feature options of ``cfg.samples`` (default: read from the normalizer's spec).
    train_period : list, optional
        ``[first, last]`` day of the training labels (ISO strings).
    split : str or dict, optional
        Split strategy and details.
    metrics : dict, optional
        Test scores (r, ubRMSE in m3 m-3 ...).
    source : str
        ``'synthetic twin'`` or ``'real data'``.
    model_card : dict, optional
        Free sections of the model card (``title``, ``intended_use``, ``limitations`` ...): key -> text, list or
        mapping.
    extra : dict, optional
        More plain metadata stored in ``extra``.

    Returns
    -------
    Path
        The ``.pt`` file.

    Raises
    ------
    CheckpointMismatchError
        ``features`` or ``window`` contradict the normalizer or the model.
    """
    path = Path(path)
    spec = normalizer.spec
    features = list(features) if features is not None else list(normalizer.names)
    window = int(window if window is not None else model.window)
    if features != list(normalizer.names):
        raise CheckpointMismatchError(f"features {features} differ from the normalizer's {normalizer.names}")
    if int(getattr(model, "window", window)) != window:
        raise CheckpointMismatchError(f"window {window} differs from the model's {model.window}")
    if int(getattr(model, "n_features", len(features))) != len(features):
        raise CheckpointMismatchError(f"the model takes {model.n_features} features, {len(features)} named")
    doc = {
        **(extra or {}),
        "features": features,
        "units": {n: spec.units.get(n, "") for n in features},
        "normalizer": normalizer.to_dict(),
        "window": window,
        "window_mode": window_mode,
        "add_doy": bool(spec.doy if add_doy is None else add_doy),
        "include_filled_flags": bool(len(spec.flags) > 0 if include_filled_flags is None else include_filled_flags),
        "train_period": [str(d) for d in train_period] if train_period is not None else None,
        "split": split,
        "metrics": metrics or {},
        "source": source,
    }
    save_checkpoint(path, model, name, hparams, doc)
    n_parameters = sum(p.numel() for p in model.parameters())
    text = model_card_markdown(path, name, hparams, normalizer, window, window_mode, doc, dict(model_card or {}),
                               n_parameters)
    with atomic_write(path.with_suffix(".md")) as tmp:
        tmp.write_text(text)
    return path
