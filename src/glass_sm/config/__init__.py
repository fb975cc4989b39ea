"""Typed parameters for every stage, loaded from ``params/*.yaml``.

One YAML mapping per run, one section per concern. Every key is declared here with its type, default, a
one-line documentation string and, for a number (or a list of numbers), its valid range (:class:`Range`:
``P(20, "maximum epochs", ge=1)``). :func:`load` rejects, *before any work starts* and naming the file and the key:
an unreadable file (not UTF-8, not valid YAML, a key given twice, empty, not a mapping), an unknown key (naming
the closest valid one, or the section it belongs in), a value of the wrong type or out of its range, values that
contradict each other, a run name that would leave ``results_dir``, and a twin that would not fit in memory.

>>> cfg = load("params/smoke.yaml", {"training.epochs": 2})   # doctest: +SKIP
>>> cfg.training.epochs                                         # doctest: +SKIP
2

Model hyperparameters
---------------------
``models.hparams`` has a section ``common`` (shared settings, applied to every model whose class declares the key)
and one section per model of :data:`glass_sm.models.MODEL_REGISTRY` (wins over ``common``); each key is checked
against the class's ``default_hparams`` (name), ``__init__`` annotations (type) and ``hparam_ranges`` (range). The
sections are merged onto :data:`DEFAULT_HPARAMS` key by key. :func:`glass_sm.models.model_hparams` resolves them
for one model.

Memory of the twin
------------------
A twin run is refused when the twin's estimated peak memory (:func:`twin_memory_bytes`: the simulated cells x the
days of the period and of the spin-up year x :data:`TWIN_BYTES_PER_CELL_DAY`) exceeds :func:`memory_limit_bytes`
(:data:`MEMORY_FRACTION` of this machine's physical memory, or ``$GLASS_SM_MAX_MEMORY_GIB``); the error gives
both in GiB.

Path templates
--------------
Data paths may contain ``{raw}`` (the run's twin input folder ``results/<run>/data/raw``), ``{results}`` (the
run's results folder) and ``{root}`` (``data.root``, or the ``GLASS_SM_DATA`` environment variable): they are
expanded once, here.
"""

from glass_sm.config.schema import *  # noqa: F401,F403
from glass_sm.config.checks import *  # noqa: F401,F403
from glass_sm.config.files import *  # noqa: F401,F403
from glass_sm.config.provenance import *  # noqa: F401,F403
from glass_sm.config.provenance import _main  # noqa: F401
