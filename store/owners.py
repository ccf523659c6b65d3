"""Who holds a claim, a lease or a worker row: "host:pid:tag", and whether that process is gone.

Kept apart from the tables so `arsync status` (which must start fast) can ask it too.
"""

from __future__ import annotations

import os
import socket
import uuid


def worker_id() -> str:
    """A lease owner's id: "host:pid:tag", unique per process and call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_dead(owner: str) -> bool:
    """True when `owner` names a process of this host that has exited."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
