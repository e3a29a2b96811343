"""The releases the guarded room is tested on: pyproject.toml allows exactly those,
the environment under test holds them, and a server outside them refuses to start."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from hub_rtc.singleuser.releases import OLDEST, TESTED, installed, untested

ROOT = Path(__file__).resolve().parents[2]


def server_extra() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["optional-dependencies"]["server"]]
    return {r.name: r for r in reqs}


def test_pyproject_allows_exactly_the_tested_ranges() -> None:
    extra = server_extra()
    for name, (oldest, beyond) in TESTED.items():
        spec = extra[name].specifier
        assert Version(oldest) in spec, (name, str(spec))
        assert Version(beyond) not in spec, (name, str(spec))
        below = Version(oldest).release
        assert Version(f"{below[0]}.{below[1] - 1}" if below[1] else f"{below[0] - 1}.99") not in spec


def test_the_releases_under_test_are_tested_ones() -> None:
    """In ./dev test-compat's environment (HUB_RTC_COMPAT=1) they are the oldest."""
    assert untested() == []
    if os.environ.get("HUB_RTC_COMPAT"):
        assert {name: installed(name) for name in OLDEST} == OLDEST


def test_a_release_outside_the_range_is_named_with_the_range() -> None:
    found = {"jupyter-server-ydoc": "3.1.0", "jupyter-collaboration": "5.0.4", "pycrdt": "0.13.9"}
    assert untested(found.get) == [
        "jupyter-server-ydoc 3.1.0 (tested: 3.0.0 up to, not including, 3.1)",
        "pycrdt 0.13.9 (tested: 0.14.0 up to, not including, 0.15)",
    ]
    assert untested({"jupyter-server-ydoc": "3.0.2rc1"}.get) == []  # pre-releases inside count
    assert untested({"pycrdt": "not a version"}.get) == [
        "pycrdt not a version (tested: 0.14.0 up to, not including, 0.15)"]


def test_a_server_on_an_untested_release_refuses_to_start_naming_it(monkeypatch, capfd) -> None:
    import pytest

    from hub_rtc.singleuser import app as extension

    def exit_(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(extension.releases, "untested", lambda: ["pycrdt 0.15.1 (tested: …)"])
    monkeypatch.setattr(extension.os, "_exit", exit_)
    ext = extension.HubRTCExtension()
    with pytest.raises(SystemExit) as stopped:
        ext._check_releases()
    assert stopped.value.code == 3
    said = capfd.readouterr().err  # (the application's own log handler writes to stderr)
    assert "not tested on pycrdt 0.15.1" in said and "allow_untested_releases" in said
    ext.allow_untested_releases = True
    ext._check_releases()  # starts, and says so
    assert "starting on untested releases: pycrdt 0.15.1" in capfd.readouterr().err
