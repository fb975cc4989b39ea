"""Data: the harmonized cube (ingest, gap filling) and the training samples (features, windows, splits).

Import from the package (``from glass_sm.data import build_samples, FeatureSpec``): the modules behind it may move.
"""

from glass_sm.data.cube import *  # noqa: F401,F403
from glass_sm.data.samples import *  # noqa: F401,F403
