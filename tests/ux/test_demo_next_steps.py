"""Every command the demo prints as a next step works when pasted as printed, in a fresh shell."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys


def test_printed_next_commands_all_exit_0(tmp_path):
    # a fresh shell: no demo secrets, no config from the environment
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "ARSYNC_"))}
    demo = subprocess.run(
        [sys.executable, "-m", "sync", "demo", "--dir", str(tmp_path / "my demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    tail = demo.stdout.split("next, try:\n", 1)[1]
    commands = [shlex.split(line) for line in tail.splitlines() if line.startswith("  ")]
    assert [c[3:5] for c in commands] == [
        ["status"],
        ["history"],
        ["portal", "conflicts"],
        ["customer", "invoices"],
        ["statement", "acme"],
    ]
    outputs = []
    for argv in commands:
        assert argv[0].endswith("arsync") and os.access(argv[0], os.X_OK)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (0, ""), argv
        outputs.append(done.stdout)
    status, history, conflicts, invoices, statement = outputs
    assert "acme (quickbooks)" in status and "globex (xero)" in status
    blocks = re.findall(r"^\S+ \(\w+\)\n((?:  .*\n?)+)", status, re.M)  # each company's lines
    assert len(blocks) == 2, status
    for block in blocks:  # each company's last and next sync
        last = re.search(r"last sync:\s+(\S+)", block)
        upcoming = re.search(r"next sync:\s+(\S+)", block)
        assert last and upcoming and upcoming[1] > last[1], block  # never due before it last ran
    assert history.count(" full ") == 2 and history.count(" incr ") == 2  # first syncs pulled everything
    assert "customer " in conflicts
    assert "balance due" in invoices and "Past Due" in invoices
    assert statement.strip()
