"""Files that live at the top of the checkout and ship inside the wheel.

``alembic/``, ``jupyterhub_config.d/`` and ``docs/openapi.yaml`` have one
copy each in the source tree; the wheel carries them under ``hub_rtc/_data``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def resource(relative: str) -> Path:
    """Path of a shipped file, installed or in a checkout."""
    for base in (_PACKAGE / "_data", _PACKAGE.parent):
        candidate = base / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"hub_rtc resource {relative!r} is missing from the installation")


def alembic_dir() -> Path:
    return resource("alembic")


def dropin_path() -> Path:
    return resource("jupyterhub_config.d/hub_rtc.py")


def openapi_path() -> Path:
    return resource("docs/openapi.yaml")


def load_dropin(c: Any) -> None:
    """Apply the hub_rtc drop-in to ``c``, the config of jupyterhub_config.py."""
    path = dropin_path()
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    exec(code, {"c": c, "get_config": lambda: c, "__file__": str(path)})
