"""glass_sm.lock: one holder at a time; a dead holder's lock is taken over with a warning; released on error."""

from __future__ import annotations

import json
import os
import socket

import pytest

from glass_sm.lock import LockedError, LockWarning, hold_lock


def test_second_holder_refused_and_released_after_error(tmp_path):
    path = tmp_path / "x.lock"
    with pytest.raises(RuntimeError, match="boom"):
        with hold_lock(path, "thing") as info:
            assert json.loads(path.read_text())["pid"] == os.getpid() == info["pid"]
            with pytest.raises(LockedError, match=rf"the thing is held by pid {os.getpid()} on host"):
                with hold_lock(path, "thing"):
                    pass
            raise RuntimeError("boom")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_dead_holder_taken_over_with_a_warning(tmp_path):
    path = tmp_path / "x.lock"
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    path.write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "started": "2024-01-01", "token": "t"}))
    with pytest.warns(LockWarning, match=rf"stale thing lock .*pid {dead}"):
        with hold_lock(path, "thing"):
            assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()
