"""glibc's malloc settings for fetching threads (connectors.arenas): both take on glibc."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_both_settings_are_accepted_by_glibc():
    # A fresh interpreter: the settings are process-wide and cached once applied.
    done = subprocess.run(
        [sys.executable, "-c", "from connectors.arenas import limit_arenas; print(limit_arenas())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"  # mallopt returns 0 for a parameter it does not know
