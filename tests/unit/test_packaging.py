"""The wheel carries what `hub-rtc upgrade-db`, the drop-in, the API and the
shared-server extension need."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import hub_rtc

ROOT = Path(__file__).resolve().parents[2]
#: where pip puts it: <prefix>/etc/jupyter/…, a folder jupyter_server reads its config from
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/hub_rtc.json"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    [built] = out.glob("hub_rtc-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_ships_migrations_dropin_and_spec(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    migrations = sorted(p.name for p in (ROOT / "alembic" / "versions").glob("*.py"))
    assert migrations and all(f"hub_rtc/_data/alembic/versions/{m}" in names for m in migrations)
    assert {"hub_rtc/_data/alembic/env.py", "hub_rtc/_data/jupyterhub_config.d/hub_rtc.py",
            "hub_rtc/_data/docs/openapi.yaml"} <= names


def test_wheel_enables_the_server_extension_wherever_it_is_installed(wheel: zipfile.ZipFile) -> None:
    # hatchling's shared-data lands in <name>-<version>.data/data/, installed under the prefix
    shared = f"hub_rtc-{hub_rtc.__version__}.data/data/{SERVER_CONFIG}"
    assert shared in wheel.namelist()
    config = json.loads(wheel.read(shared))
    assert config["ServerApp"]["jpserver_extensions"]["hub_rtc"] is True
    # … and it is the very file in the checkout
    assert config == json.loads((ROOT / "jupyter_server_config.d" / "hub_rtc.json").read_text())


def test_the_extension_point_names_the_extension_app() -> None:
    from hub_rtc.singleuser.app import HubRTCExtension

    [point] = hub_rtc._jupyter_server_extension_points()
    assert point["app"] is HubRTCExtension
    assert point["module"] == HubRTCExtension.__module__
    assert HubRTCExtension.name == "hub_rtc"  # the key jpserver_extensions enables


def test_jupyter_server_finds_the_extension_by_that_key() -> None:
    from jupyter_server.extension.manager import ExtensionPackage

    from hub_rtc.singleuser.app import HubRTCExtension

    package = ExtensionPackage(name="hub_rtc", enabled=True)
    assert package.validate()
    assert isinstance(package.extension_points["hub_rtc"].app, HubRTCExtension)


def test_wheel_ships_the_pages_templates_and_static_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    service = ROOT / "hub_rtc" / "service"
    shipped = [p.relative_to(ROOT).as_posix() for folder in ("templates", "static")
               for p in (service / folder).iterdir()]
    assert shipped and all(name in names for name in shipped), sorted(set(shipped) - names)


def test_wheel_ships_the_jupyterlab_extension_prebuilt(wheel: zipfile.ZipFile) -> None:
    """Where JupyterLab finds prebuilt extensions: <prefix>/share/jupyter/labextensions/."""
    shared = f"hub_rtc-{hub_rtc.__version__}.data/data/share/jupyter/labextensions/hub-rtc-lab/"
    names = [n for n in wheel.namelist() if n.startswith(shared)]
    assert shared + "package.json" in names
    assert any(n.startswith(shared + "static/remoteEntry.") for n in names)
    meta = json.loads(wheel.read(shared + "package.json"))
    assert meta["name"] == "hub-rtc-lab" and meta["jupyterlab"]["_build"]["load"]
    assert not any(n.startswith("hub_rtc/labextension/") for n in wheel.namelist())  # once
