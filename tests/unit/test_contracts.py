"""Docs and contracts that must not drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from traitlets.config import Config

from hub_rtc.docs import _classes, config_reference, openapi_reference
from hub_rtc.resources import dropin_path, load_dropin
from hub_rtc.service.handlers import all_handlers
from hub_rtc.service.spec import spec

ROOT = Path(__file__).resolve().parents[2]


def test_config_reference_is_generated_from_the_code() -> None:
    written = (ROOT / "docs" / "config-reference.md").read_text()
    assert written == config_reference(), "run: hub-rtc config-reference > docs/config-reference.md"


def _configurable() -> list[type]:
    """Every class an admin configures, wherever it runs: named here, not taken from
    the generator, so dropping one from the reference fails too."""
    from hub_rtc.policy import RTCPolicy
    from hub_rtc.service.app import RTCService
    from hub_rtc.singleuser.app import HubRTCExtension

    return [RTCService, RTCPolicy, HubRTCExtension]


def test_every_configurable_class_is_in_the_reference() -> None:
    assert _classes() == _configurable()


def test_every_trait_has_help_and_a_section_in_the_reference() -> None:
    written = (ROOT / "docs" / "config-reference.md").read_text()
    sections = set(re.findall(r"^### `c\.(\w+\.\w+)`$", written, flags=re.MULTILINE))
    traits = {f"{cls.__name__}.{name}": trait for cls in _configurable()
              for name, trait in cls.class_own_traits(config=True).items()}
    assert "HubRTCExtension.service_url" in traits  # the server side's options are covered
    assert sorted(name for name, trait in traits.items() if not (trait.help or "").strip()) == []
    assert sorted(set(traits) - sections) == [], "run: hub-rtc config-reference > docs/config-reference.md"
    assert sorted(sections - set(traits)) == [], "the reference names options the code no longer has"


def test_the_reference_says_where_each_class_is_set() -> None:
    written = (ROOT / "docs" / "config-reference.md").read_text()
    server_side = written.split("## HubRTCExtension", 1)[1]
    assert "jupyter_server_config.py" in server_side and "not in `jupyterhub_config.py`" in server_side
    hub_side = written.split("## RTCPolicy", 1)[1].split("## HubRTCExtension", 1)[0]
    assert "jupyterhub_config.py" in hub_side


def test_openapi_spec_is_valid() -> None:
    validate(yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text()))


def test_the_api_reference_shows_every_operation_and_schema_with_working_links() -> None:
    page = openapi_reference(spec())
    headings = re.findall(r"^### `(.+)`$", page, flags=re.MULTILINE)
    operations = [f"{method.upper()} {path}" for path, item in spec()["paths"].items()
                  for method in set(item) - {"parameters"}]
    assert sorted(headings) == sorted(operations + list(spec()["components"]["schemas"]))
    labels = re.findall(r"^\((api-[a-z0-9-]+)\)=$", page, flags=re.MULTILINE)
    assert len(set(labels)) == len(labels) == len(headings)
    assert set(re.findall(r"\]\(#(api-[a-z0-9-]+)\)", page)) <= set(labels)
    scopes = {op["x-scope"] for item in spec()["paths"].values()
              for op in item.values() if isinstance(op, dict) and "x-scope" in op}
    assert all(f"Scope: `{scope}`." in page for scope in scopes)


def _route_to_spec(pattern: str) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    return "/" if path == "/?" else path


def test_every_route_is_in_the_spec_and_every_spec_path_is_served() -> None:
    served = {_route_to_spec(p) for p, _ in all_handlers()}
    assert served == set(spec()["paths"])


def test_every_spec_method_is_implemented() -> None:
    handlers = {_route_to_spec(p): h for p, h in all_handlers()}
    for path, item in spec()["paths"].items():
        for method in set(item) - {"parameters"}:
            assert method in handlers[path].__dict__, f"{method.upper()} {path} is not implemented"


def test_every_scope_in_the_spec_is_declared_by_the_dropin() -> None:
    declared = set(re.findall(r'"(custom:rtc:[a-z:]+)": \{', dropin_path().read_text()))
    used = {op["x-scope"] for item in spec()["paths"].values()
            for op in item.values() if isinstance(op, dict) and "x-scope" in op}
    assert used <= declared and declared


def test_dropin_keeps_the_admins_config_and_hands_policy_over() -> None:
    c = Config()
    c.JupyterHub.services = [{"name": "ops", "api_token": "x" * 32}]
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:groups"]}]
    c.Authenticator.admin_users = {"root"}
    c.RTCPolicy.max_members_per_session = 4
    c.RTCPolicy.instructor_groups = {"staff": ["cs101"]}
    c.RTCService.db_url = "postgresql+psycopg://db/rtc"
    load_dropin(c)
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"ops", "rtc"}
    handover = json.loads(services["rtc"]["environment"]["HUB_RTC_CONFIG"])
    assert handover["RTCPolicy"]["max_members_per_session"] == 4
    assert handover["RTCService"]["db_url"] == "postgresql+psycopg://db/rtc"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert {"self", "read:groups", "custom:rtc:sessions", "access:services!service=rtc"} <= set(
        roles["user"]["scopes"])
    assert roles["rtc-admin"]["users"] == ["root"]
    assert roles["rtc-instructor"]["groups"] == ["staff"]
    assert roles["rtc-service"]["scopes"] == sorted([
        "list:users", "read:users", "list:groups", "read:groups",  # look-ups
        "admin:users", "servers", "shares",  # hosting
    ])
    assert set(roles["server"]["scopes"]) == {
        "users:activity!user", "access:servers!server",  # the hub's defaults, kept
        "access:services!service=rtc", "custom:rtc:authorize!server", "custom:rtc:activity:write!server"}
    # a server's token gets only what its user holds: each user, for their own servers
    assert {"custom:rtc:authorize!user", "custom:rtc:activity:write!user"} <= set(roles["user"]["scopes"])
    assert c.Spawner.environment["HUB_RTC_API_URL"] == "http://127.0.0.1:10101/services/rtc/api/v1"
    # servers believe the on-behalf header from this service alone; the relay reaches
    # them through the proxy (JupyterHub's default address here)
    assert c.Spawner.environment["HUB_RTC_SERVICE_NAME"] == "rtc"
    assert handover["RTCService"]["upstream_url"] == "http://127.0.0.1:8000"
    assert "custom:rtc:admin" in c.JupyterHub.custom_scopes


def test_dropin_without_hosting_keeps_the_service_to_look_ups() -> None:
    c = Config()
    c.RTCService.manage_hub_access = False
    c.Spawner.environment = {"KEEP": "me", "HUB_RTC_API_URL": "http://rtc.internal/api"}
    c.JupyterHub.load_roles = [{"name": "server", "scopes": ["read:users:name!user"]}]
    load_dropin(c)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["rtc-service"]["scopes"] == sorted(["list:users", "read:users", "list:groups",
                                                     "read:groups"])
    # an admin's own server role keeps its scopes and gains only hub_rtc's
    assert set(roles["server"]["scopes"]) == {"read:users:name!user", "access:services!service=rtc",
                                              "custom:rtc:authorize!server",
                                              "custom:rtc:activity:write!server"}
    assert c.Spawner.environment == {"KEEP": "me", "HUB_RTC_API_URL": "http://rtc.internal/api",
                                     "HUB_RTC_SERVICE_NAME": "rtc"}


def test_service_reads_the_handover(monkeypatch, tmp_path) -> None:
    from hub_rtc.service.app import RTCService

    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    handover = {"RTCService": {"db_url": url}, "RTCPolicy": {"max_members_per_session": 3}}
    monkeypatch.setenv("HUB_RTC_CONFIG", json.dumps(handover))
    app = RTCService()
    app.initialize([])
    assert app.db_url == url and app.policy.max_members_per_session == 3
    app.db.dispose()


def test_dropin_completes_an_external_service_and_adds_no_managed_one() -> None:
    """zero-to-jupyterhub's hub.services.rtc (url, api_token, no command): the replicas
    run elsewhere with that token; the hub must not start another."""
    c = Config()
    c.JupyterHub.services = [{"name": "rtc", "url": "http://hub-rtc:10101", "api_token": "t" * 32}]
    load_dropin(c)
    [service] = c.JupyterHub.services
    assert "command" not in service and "environment" not in service
    assert (service["url"], service["api_token"]) == ("http://hub-rtc:10101", "t" * 32)
    assert service["oauth_no_confirm"] is True
    assert "access:services!service=rtc" in service["oauth_client_allowed_scopes"]
    assert c.Spawner.environment["HUB_RTC_API_URL"] == "http://hub-rtc:10101/services/rtc/api/v1"
    managed = Config()
    managed.JupyterHub.services = [{"name": "rtc", "command": ["elsewhere"]}]
    with pytest.raises(ValueError, match="already has a service 'rtc' with a command"):
        load_dropin(managed)


def test_dropin_gives_servers_the_api_under_the_hubs_base_url_in_every_spawners_section() -> None:
    """A spawner's own section wins over c.Spawner's (zero-to-jupyterhub always sets
    c.KubeSpawner.environment), and every service lives under the hub's base URL."""
    c = Config()
    c.JupyterHub.base_url = "/jhub/"
    c.KubeSpawner.environment = {"TZ": "UTC", "HUB_RTC_SERVICE_NAME": "mine"}
    c.DockerSpawner.cpu_limit = 1.0  # a section without environment is left alone
    load_dropin(c)
    want = "http://127.0.0.1:10101/jhub/services/rtc/api/v1"
    assert c.Spawner.environment["HUB_RTC_API_URL"] == want
    assert c.KubeSpawner.environment == {"TZ": "UTC", "HUB_RTC_SERVICE_NAME": "mine",
                                         "HUB_RTC_API_URL": want}  # the admin's values win
    assert "environment" not in c.DockerSpawner


def test_a_replica_reads_its_settings_file_and_the_command_line_wins(tmp_path) -> None:
    from hub_rtc.service.app import RTCService

    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    settings = tmp_path / "hub_rtc_config.py"
    settings.write_text(f"c.RTCService.db_url = {url!r}\n"
                        "c.RTCService.push_ack_seconds = 4.0\n"
                        "c.RTCPolicy.max_members_per_session = 7\n")
    app = RTCService()
    app.initialize([f"--RTCService.config_file={settings}", "--RTCService.push_ack_seconds=9"])
    try:
        assert app.db_url == url and app.policy.max_members_per_session == 7
        assert app.push_ack_seconds == 9.0  # the command line over the file
    finally:
        app.db.dispose()
    missing = RTCService()
    with pytest.raises(SystemExit):
        missing.initialize([f"--RTCService.config_file={tmp_path / 'nope.py'}"])


def test_replicas_share_a_cookie_key_given_in_hex(tmp_path) -> None:
    from hub_rtc.service.app import RTCService

    app = RTCService(cookie_secret="ab" * 32)
    assert app.cookie_key() == bytes.fromhex("ab" * 32)
    assert len(RTCService().cookie_key()) == 32  # none given: a fresh one per start
    for bad in ("ab" * 8, "not hex"):
        with pytest.raises(SystemExit):
            RTCService(cookie_secret=bad).cookie_key()


def test_the_request_log_keeps_warnings_for_failures() -> None:
    """A refusal is the rules at work (INFO); only the service failing is a WARNING;
    successful reads, which scripts and pages poll, stay out of the INFO log."""
    import logging

    from hub_rtc.service.app import request_log_level

    assert request_log_level(200, "GET") == logging.DEBUG
    assert request_log_level(204, "HEAD") == logging.DEBUG
    assert request_log_level(201, "POST") == logging.INFO
    for status in (400, 403, 404, 409, 413, 422):
        assert request_log_level(status, "GET") == logging.INFO
        assert request_log_level(status, "PUT") == logging.INFO
    for status in (500, 502, 503):
        assert request_log_level(status, "GET") == logging.WARNING
