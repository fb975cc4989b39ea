"""glass_sm: a reproducible compendium for the GLASS-AVHRR daily 0.05 deg soil-moisture product.

Zhang et al. (2025), ESSD 17, 5181-5207, https://doi.org/10.5194/essd-17-5181-2025.
By default every stage runs on an embedded *synthetic twin* (see :mod:`glass_sm.twin`);
results obtained on the twin are labelled as such and are not the paper's results.
"""

__version__ = "0.1.0"
PAPER_DOI = "10.5194/essd-17-5181-2025"

# pyproj must be loaded before ecCodes: both wheels bundle their own libproj/libcurl/libsqlite, and loading
# ecCodes first makes the interpreter abort at exit ("double free or corruption"). Importing pyproj here, first,
# keeps every entry point (tests, notebooks, xarray's backend discovery) safe.
import pyproj as _pyproj  # noqa: E402,F401
