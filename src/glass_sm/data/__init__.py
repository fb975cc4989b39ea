"""Data: the harmonized cube and the training samples built from it.

Modules, in the order data flows through them:

* :mod:`~glass_sm.data.cube` - ingest the sources into the 0.05 deg analysis-ready cube (gap filling, zarr);
* :mod:`~glass_sm.data.ingest` - the day-major path to the same cube: each source file read once over the
  domain on a Dask cluster into a time-chunked store, then rechunked tile by tile (``cube.ingest``);
* :mod:`~glass_sm.data.features` - which cube variables a window carries (:class:`FeatureSpec`), their
  normalization fitted on the training split (:class:`Normalizer`), the dense feature array;
* :mod:`~glass_sm.data.windows` - the ``L`` days of a ``(pixel, day)`` sample, gathered on demand, and torch
  batches of them;
* :mod:`~glass_sm.data.splits` - random, site (spatial block) and year hold-outs;
* :mod:`~glass_sm.data.samples` - :func:`build_samples`: the valid samples of a cube, split, with their
  normalizer (:class:`Samples`).

Import from the package (``from glass_sm.data import build_samples, FeatureSpec``): the modules behind it may move.
The synthetic toy cube lives in :mod:`glass_sm.testing` (re-exported here as ``make_toy_cube``).
"""

from glass_sm.data.cube import *  # noqa: F401,F403
from glass_sm.data.features import *  # noqa: F401,F403
from glass_sm.data.samples import *  # noqa: F401,F403
from glass_sm.data.splits import *  # noqa: F401,F403
from glass_sm.data.windows import *  # noqa: F401,F403


def __getattr__(name: str):
    """``make_toy_cube`` from :mod:`glass_sm.testing`, looked up on first use.

    Lazy because :mod:`glass_sm.testing` imports :mod:`glass_sm.data.cube` (the schema): an import at the top
    of this package would be circular when ``glass_sm.testing`` is imported first.
    """
    if name == "make_toy_cube":
        from glass_sm.testing import make_toy_cube  # noqa: PLC0415 (import cycle, see the docstring)

        return make_toy_cube
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
