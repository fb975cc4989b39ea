"""One process at a time: a lock file holding pid, host and start time, taken over when its holder is gone.

Used by stage 04 (one production per results folder). The lock is created atomically (a hard link of a complete
temporary file), so a reader never sees half a record; a holder whose process no longer runs on this host (or whose
pid now belongs to another process) is stale and its lock is taken over with a warning; a lock taken on another
host cannot be checked from here and is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import uuid
import warnings
from pathlib import Path
from typing import Callable

__all__ = ["LockedError", "LockWarning", "hold_lock"]


class LockedError(RuntimeError):
    """Another process holds the lock (the message names its pid, host and start time)."""


class LockWarning(UserWarning):
    """A stale lock was taken over."""


def _process_state(pid: int) -> tuple[bool, str | None]:
    """Whether process ``pid`` runs on this host (a zombie does not) and its start time (Linux ``/proc``: clock
    ticks since boot, to tell a reused pid), or None where unknown."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:  # it exists, under another user
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return fields[0] not in ("Z", "X"), fields[19]
    except (OSError, ValueError, IndexError):
        return True, None


def _lock_holder(path: Path) -> dict | None:
    """The lock's record, or None when it is gone or unreadable."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(info, dict) and isinstance(info.get("pid"), int) and info["pid"] > 0 and \
        isinstance(info.get("host"), str)
    return info if ok else None


def _describe_holder(info: dict) -> str:
    return f"pid {info['pid']} on host {info['host']} since {info.get('started', '(unknown time)')}"


def _is_stale(info: dict) -> bool:
    """True when the holder ran on this host and its process is gone (or its pid now belongs to another)."""
    if info["host"] != socket.gethostname():
        return False  # cannot tell from here
    alive, start = _process_state(info["pid"])
    return not alive or (start is not None and info.get("pid_start") not in (None, start))


def _create_lock(path: Path, info: dict) -> bool:
    """Create ``path`` holding ``info`` only if it does not exist (hard link of a complete temporary, so a reader
    never sees a half-written lock; exclusive create where the file system has no hard links)."""
    text = json.dumps(info, indent=1)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{info['token'][:8]}.partial")
    try:
        tmp.write_text(text)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            return True
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike, what: str = "run", error: type[LockedError] = LockedError,
              warn: Callable[[str], None] | None = None):
    """Hold the lock file ``path`` (pid, host, start time) for the duration of the block.

    A lock whose process is gone (same host; a zombie or a reused pid counts as gone) is taken over, with
    ``warn(message)`` (default: a :class:`LockWarning`). The lock is removed when the block ends, also on error
    or KeyboardInterrupt.

    Parameters
    ----------
    path : path-like
        The lock file (its folder is created).
    what : str
        What the lock protects, for messages (e.g. ``"production"``).
    error : type
        The :class:`LockedError` subclass to raise.
    warn : callable, optional
        Called with the message when a stale lock is taken over.

    Raises
    ------
    LockedError
        Another process holds the lock (or it cannot be read, or it was taken on another host), naming the
        holder and the lock file.
    """
    path = Path(path)
    warn = warn or (lambda message: warnings.warn(message, LockWarning, stacklevel=4))
    path.parent.mkdir(parents=True, exist_ok=True)
    _, start = _process_state(os.getpid())
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "pid_start": start,
            "token": uuid.uuid4().hex}
    for _ in range(5):
        if _create_lock(path, info):
            break
        holder = _lock_holder(path)
        if holder is None:
            if not path.exists():
                continue  # released meanwhile
            raise error(f"{path} locks the {what} but cannot be read; if no {what} is running, delete it")
        if not _is_stale(holder):
            other_host = holder["host"] != socket.gethostname()
            raise error(
                f"the {what} is held by {_describe_holder(holder)} (lock file "
                f"{path}); wait for that run to end" + (", or delete the lock file if it is gone (a lock taken on "
                                                        "another host cannot be checked from here)" if other_host
                                                        else ""))
        aside = path.with_name(f"{path.name}.{os.getpid()}.stale")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            continue  # another run took it over first
        taken = _lock_holder(aside)
        if taken != holder:  # another run replaced the stale lock in between: give its lock back
            with contextlib.suppress(OSError):
                os.link(aside, path)
            aside.unlink(missing_ok=True)
            continue
        aside.unlink(missing_ok=True)
        warn(f"taking over the stale {what} lock {path} of {_describe_holder(holder)}: that process is gone "
             "(killed?)")
    else:
        raise error(f"could not take the {what} lock {path}: other runs keep taking it")
    try:
        yield info
    finally:
        if (_lock_holder(path) or {}).get("token") == info["token"]:
            path.unlink(missing_ok=True)
