"""examples/z2jh must agree with the drop-in and with itself.

The hub's side is run the way zero-to-jupyterhub's jupyterhub_config.py runs it:
each hub.services entry becomes a c.JupyterHub.services entry named after its key
with the token from the chart's Secret, c.KubeSpawner.environment is set from
singleuser.extraEnv (empty by default), and the hub.extraConfig entries run in
the order of their keys.  The files are read, not copied, so an edit to one that
the others do not follow fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from jupyterhub.spawner import LocalProcessSpawner
from traitlets.config import Config, PyFileConfigLoader

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "z2jh"
MOUNT = "/etc/hub-rtc"  # where both the hub and the replicas mount the ConfigMap


class KubeSpawner(LocalProcessSpawner):
    """Stands in for kubespawner's class: what matters is its config section's name."""


def _values() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLE / "values.yaml").read_text())


def _manifests() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((EXAMPLE / "hub-rtc.yaml").read_text()) if d]
    return {d["kind"]: d for d in docs}


def _settings() -> Config:
    return PyFileConfigLoader("hub_rtc_config.py", path=str(EXAMPLE)).load_config()


def _hub_config(values: dict[str, Any]) -> Config:
    """What the chart's jupyterhub_config.py makes of ``values``, hub_rtc's part."""
    c = Config()
    c.KubeSpawner.environment = values.get("singleuser", {}).get("extraEnv", {})
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    for key, service in values["hub"].get("services", {}).items():
        service = {"name": key, **service}
        service.pop("apiToken", None)
        service["api_token"] = "from-the-hub-secret"
        c.JupyterHub.services.append(service)
    for key, code in sorted(values["hub"]["extraConfig"].items()):
        assert f'"{MOUNT}"' in code or "hub_rtc" not in code, f"{key} reads the settings elsewhere"
        exec(code.replace(f'"{MOUNT}"', repr(str(EXAMPLE))), {"c": c})
    return c


def _container() -> dict[str, Any]:
    [container] = _manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_hub_takes_rtc_as_an_external_service_at_the_shared_url() -> None:
    values = _values()
    rtc = values["hub"]["services"]["rtc"]
    assert "command" not in rtc, "a command would make the hub start a second service"
    assert rtc["url"] == _settings().RTCService.bind_url
    c = _hub_config(values)
    [service] = c.JupyterHub.services
    assert "command" not in service and service["url"] == rtc["url"]
    assert service["api_token"] == "from-the-hub-secret"  # kept, not replaced
    assert {"rtc-service", "server", "user"} <= {r["name"] for r in c.JupyterHub.load_roles}


def test_single_user_servers_get_the_service_url_despite_kubespawners_own_environment() -> None:
    c = _hub_config(_values())
    environment = KubeSpawner(config=c).environment
    assert environment["HUB_RTC_API_URL"] == "http://hub-rtc:10101/services/rtc/api/v1"
    assert environment["HUB_RTC_SERVICE_NAME"] == "rtc"


def test_the_configmap_carries_the_example_settings_file() -> None:
    configmap = _manifests()["ConfigMap"]
    assert configmap["data"]["hub_rtc_config.py"] == (EXAMPLE / "hub_rtc_config.py").read_text()
    hub = _values()["hub"]
    [volume] = hub["extraVolumes"]
    [mount] = hub["extraVolumeMounts"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert (mount["name"], mount["mountPath"]) == (volume["name"], MOUNT)


def test_the_replicas_are_the_service_the_hub_expects() -> None:
    url = urlparse(_values()["hub"]["services"]["rtc"]["url"])
    manifests = _manifests()
    container = _container()
    env = _env(container)
    name = env["JUPYTERHUB_SERVICE_NAME"]
    assert name == "rtc" and env["JUPYTERHUB_CLIENT_ID"] == f"service-{name}"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == f"/services/{name}/"
    assert env["JUPYTERHUB_API_TOKEN"]["secretKeyRef"] == {"name": "hub",
                                                           "key": f"hub.services.{name}.apiToken"}
    assert f"--RTCService.config_file={MOUNT}/hub_rtc_config.py" in container["args"]
    assert f"--RTCService.bind_url=http://0.0.0.0:{url.port}" in container["args"]
    assert container["ports"] == [{"name": "http", "containerPort": url.port}]
    probe = container["readinessProbe"]["httpGet"]["path"]
    assert probe == f"/services/{name}/api/v1/"
    service = manifests["Service"]
    assert service["metadata"]["name"] == url.hostname
    assert [p["port"] for p in service["spec"]["ports"]] == [url.port]
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize("path", [("hub",), ("proxy", "chp"), ("singleuser",)])
def test_the_charts_pods_may_reach_the_replicas(path: tuple[str, ...]) -> None:
    section: dict[str, Any] = _values()
    for key in path:
        section = section[key]
    pod_labels = _manifests()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    port = urlparse(_values()["hub"]["services"]["rtc"]["url"]).port
    assert any(
        to["podSelector"]["matchLabels"].items() <= pod_labels.items()
        and {"port": port, "protocol": "TCP"} in rule["ports"]
        for rule in section["networkPolicy"]["egress"] for to in rule["to"]
    )
