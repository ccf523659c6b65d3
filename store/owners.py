"""Who holds a claim, a lease or a worker row, and whether that process is known to be gone.

An owner id is "host:pid:tag:space": `space` names the machine's boot and the process's pid
namespace, so a pid is only looked up where it means the same process: containers sharing a
hostname each have their own pids, and two machines may share a name. An owner of another
space (or an older id without one) is never judged dead here; its heartbeat or claim
expiry tells. Kept apart from the tables so `arsync status` (which must start fast) can ask.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path


@cache
def _space() -> str:
    """This boot of this machine and this pid namespace, as 8 hex digits ("" if unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:8]


def worker_id() -> str:
    """A lease owner's id for this process, unique per call."""
    return owner_id(os.getpid(), uuid.uuid4().hex[:6])


def owner_id(pid: int, tag: str) -> str:
    """The id "host:pid:tag:space" of process `pid` of this machine and pid namespace."""
    return f"{socket.gethostname()}:{pid}:{tag}:{_space()}"


def gone(owner: str, alive_until: datetime | None, now: datetime) -> bool:
    """Whether a worker (or a claimer of work) is dead: its heartbeat ran out before `now`
    (killed, machine lost), or it is a process of this machine that has exited (known at once).
    `alive_until` None: no heartbeat known (a CLI process), judged by its process alone."""
    return (alive_until is not None and alive_until < now) or owner_is_dead(owner)


def owner_is_dead(owner: str) -> bool:
    """True when `owner` names a process of this machine and pid namespace that has exited."""
    host, pid, _tag, space = (owner.split(":") + ["", "", "", ""])[:4]
    if host != socket.gethostname() or not space or space != _space() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
