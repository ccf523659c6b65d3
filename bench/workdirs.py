"""The benchmarks' scratch directories: each one removed when the bench process ends.

A 100k sync leaves a ~50 MB store behind, and a whole `./dev bench` makes dozens of them;
left in /tmp they filled disks. `ARSYNC_BENCH_KEEP=1` keeps them, to look into a run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A new directory under the system's temporary one, removed at exit unless asked to keep it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("ARSYNC_BENCH_KEEP"):
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
