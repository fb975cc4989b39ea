"""Shared test fixtures.

``ismn_testdata``: the real ISMN sample stations shipped in the ``ismn`` package's source distribution
(``tests/test_data`` of ismn 1.5.4, TU Wien, MIT licence). They are fetched once from PyPI with pip into a cache
outside the repository (``$GLASS_SM_CACHE/ismn_sdist`` or ``~/.cache/glass_sm/ismn_sdist``) and extracted
there; nothing is copied into the repository. Every test that uses the fixture is marked ``network`` (deselect
them with ``-m "not network"``) and is skipped, with the reason, when the package registry cannot be reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ISMN_VERSION = "1.5.4"
_NETWORK_ERRORS = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
    "Name or service not known", "Network is unreachable", "Connection refused", "ConnectTimeout",
    "Read timed out", "ProxyError", "SSLError", "Max retries exceeded", "No route to host",
    "Could not fetch URL", "connection broken",
)


def _sdist_cache() -> Path:
    base = os.environ.get("GLASS_SM_CACHE")
    return Path(base) / "ismn_sdist" if base else Path.home() / ".cache" / "glass_sm" / "ismn_sdist"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``network`` every test that needs the package registry (it uses the ``ismn_testdata`` fixture)."""
    for item in items:
        if "ismn_testdata" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.network)


@pytest.fixture(scope="session")
def ismn_testdata() -> Path:
    """Path to ``tests/test_data`` of the ismn sdist (read-only use: copy before writing into it)."""
    cache = _sdist_cache()
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"ismn-{ISMN_VERSION}.tar.gz"
    if not sdist.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"ismn=={ISMN_VERSION}", "-d", str(cache), "--timeout", "30", "--retries", "1",
               "--disable-pip-version-check", "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not sdist.is_file():
            output = proc.stdout + proc.stderr
            hits = [ln.strip() for ln in output.splitlines() if any(s.lower() in ln.lower() for s in _NETWORK_ERRORS)]
            if hits:
                pytest.skip(f"package registry unreachable, cannot fetch the ismn {ISMN_VERSION} sdist with its "
                            f"ISMN sample stations ({' '.join(cmd[2:6])} ...): {hits[0][:300]}")
            raise RuntimeError(f"pip download of ismn=={ISMN_VERSION} failed (rc {proc.returncode}):\n{output}")
    root = cache / f"ismn-{ISMN_VERSION}"
    data = root / "tests" / "test_data"
    marker = root / ".extracted"
    if not marker.is_file():
        prefix = f"ismn-{ISMN_VERSION}/tests/test_data/"
        with tarfile.open(sdist) as tf:
            members = [m for m in tf.getmembers() if m.name.startswith(prefix)]
            tf.extractall(cache, members=members, filter="data")
        marker.write_text("ok\n")
    if not data.is_dir():  # pragma: no cover - a damaged cache
        raise RuntimeError(f"{data} missing after extracting {sdist}; delete {cache} and retry")
    return data


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module: tiny models gain nothing from threads, and spin-waiting OpenMP threads crawl
    on a busy 2-core machine (torch imported here, not at collection, so tests without torch stay light)."""
    import torch  # noqa: PLC0415

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def threads_client():
    """A distributed client on an in-process LocalCluster of 2 workers x 1 thread (threads, not processes: fast to
    start; the tasks run the same code as on a real cluster, through the scheduler)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as lc, distributed.Client(lc) as client:
        yield client
