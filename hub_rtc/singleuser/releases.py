"""The releases the guarded room is tested on, and a check of what is installed.

The guarded room subclasses jupyter-server-ydoc's room handler and replaces its
document room, so a release the suite never ran could change what it relies on
(the handler's hooks, the room's pipeline) without a sign.  ``./dev test`` runs
the suite on the newest releases and its enforcement, hosting and relay tests on
the oldest (``./dev test-compat``); pyproject.toml allows exactly these ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from packaging.version import InvalidVersion, Version

#: distribution: (oldest tested, first release not allowed)
TESTED: dict[str, tuple[str, str]] = {
    "jupyter-server-ydoc": ("3.0.0", "3.1"),
    "jupyter-collaboration": ("5.0.0", "5.1"),
    "pycrdt": ("0.14.0", "0.15"),
}


#: the oldest release of each that ``./dev test-compat`` installs: the hub's too, whose
#: allowed range (JupyterHub 5 and 6) is in pyproject.toml
OLDEST: dict[str, str] = {"jupyterhub": "5.0.0", **{n: lo for n, (lo, _) in TESTED.items()}}


def installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def untested(found: Callable[[str], str | None] = installed) -> list[str]:
    """What is installed outside :data:`TESTED`, each named with its tested range."""
    out = []
    for name, (oldest, beyond) in TESTED.items():
        got = found(name)
        if got is None:
            continue  # jupyter-collaboration is a meta-package; its parts are checked
        try:
            inside = Version(oldest) <= Version(got) < Version(beyond)
        except InvalidVersion:
            inside = False
        if not inside:
            out.append(f"{name} {got} (tested: {oldest} up to, not including, {beyond})")
    return out


if __name__ == "__main__":  # ./dev test-compat: the pins of the oldest tested releases
    print(" ".join(f"{name}=={release}" for name, release in OLDEST.items()))
