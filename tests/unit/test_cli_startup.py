"""A broken inventory stops start-up with a message naming the problem, and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_serve_refuses_a_broken_inventory(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("provider: {name: x, asn: 65000, currency: EUR}\nnodes: []\nlinks:\n  - {a: pe-1, b: p-9, capacity_mbps: -5}\n")
    env = {**os.environ, "S2CVPN_INVENTORY": str(broken), "S2CVPN_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    for command in (["serve", "--port", "1"], ["worker"]):
        result = subprocess.run([sys.executable, "-m", "s2cvpn", *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "invalid" in result.stderr and "p-9" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "db.sqlite").exists()  # nothing was started, not even the database
