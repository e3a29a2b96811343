"""The wheel carries what `hub-rtc upgrade-db`, the drop-in and the API need."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_migrations_dropin_and_spec(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    [wheel] = tmp_path.glob("hub_rtc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = sorted(p.name for p in (ROOT / "alembic" / "versions").glob("*.py"))
    assert migrations and all(f"hub_rtc/_data/alembic/versions/{m}" in names for m in migrations)
    assert {"hub_rtc/_data/alembic/env.py", "hub_rtc/_data/jupyterhub_config.d/hub_rtc.py",
            "hub_rtc/_data/docs/openapi.yaml"} <= names
