"""The kernel sandbox and the provisioner's pure parts; the sandbox really run where
``bwrap`` works here (the integration tests run real kernels in it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub_rtc.singleuser import isolation
from hub_rtc.singleuser.isolation import Sandbox, protected_files, resolve, sandbox_command
from hub_rtc.singleuser.provisioner import SERVER_SECRETS, _relative, scrubbed

NO_SANDBOX = isolation.probe()
#: the account ./dev setup makes for the tests of the account mode (where it runs as root)
ACCOUNT = "hub-rtc-kernel"
NO_ACCOUNT = isolation.probe_account(ACCOUNT)


def box(tmp_path: Path, protect: tuple[str, ...] = ()) -> Sandbox:
    session = tmp_path / "server" / "lab1"
    session.mkdir(parents=True, exist_ok=True)
    conn = tmp_path / "runtime" / "kernel-1.json"
    conn.parent.mkdir(exist_ok=True)
    conn.write_text(json.dumps({"key": "k"}))
    return Sandbox(session=str(session), cwd=str(session), connection_file=str(conn),
                   protect=protect)


def test_the_command_drops_capabilities_and_sees_no_other_process(tmp_path: Path) -> None:
    cmd = sandbox_command(["python", "-m", "ipykernel"], box(tmp_path), bwrap="/usr/bin/bwrap")
    assert cmd[0] == "/usr/bin/bwrap"
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL"  # as root, without it / can be remounted
    assert "--unshare-pid" in cmd and "--die-with-parent" in cmd
    assert cmd[-4:] == ["--", "python", "-m", "ipykernel"]


def test_protected_files_are_bound_read_only_after_the_writable_session(tmp_path: Path) -> None:
    b = box(tmp_path, protect=("/x/lab1/nb.ipynb",))
    cmd = sandbox_command(["k"], b)
    session_at = cmd.index("--bind")
    assert cmd[session_at + 1:session_at + 3] == [b.session, b.session]
    protected_at = cmd.index("/x/lab1/nb.ipynb")
    assert cmd[protected_at - 1] == "--ro-bind" and protected_at > session_at
    conn_at = cmd.index(b.connection_file)
    assert cmd[conn_at - 1] == "--ro-bind"  # the kernel reads its own connection file only


def test_protected_files_are_the_notebooks_and_the_store_inside(tmp_path: Path) -> None:
    session = tmp_path / "lab1"
    (session / "sub").mkdir(parents=True)
    for name in ("a.ipynb", "sub/b.ipynb", "data.csv"):
        (session / name).write_text("{}")
    store_in, store_out = session / ".jupyter_ystore.db", tmp_path / ".jupyter_ystore.db"
    store_in.write_text("")
    store_out.write_text("")
    found = protected_files(str(session), [str(store_in), str(store_out), str(session / "none")])
    assert sorted(found) == sorted([str(session / "a.ipynb"), str(session / "sub/b.ipynb"),
                                    str(store_in)])


def test_secrets_leave_every_kernel_environment_unless_kept() -> None:
    env = {"PATH": "/bin", **{name: "secret" for name in SERVER_SECRETS}}
    assert scrubbed(env) == {"PATH": "/bin"}
    assert scrubbed(env, keep=True) == env


@pytest.mark.parametrize(("cwd", "expected"), [
    ("/srv/home/olive", ""), ("/srv/home/olive/lab1", "lab1"), ("/srv/home/olive/lab1/sub", "lab1/sub"),
    ("/srv/home/olive2", None), ("/srv/home", None)])
def test_a_kernel_folder_below_the_server_root(cwd: str, expected: str | None) -> None:
    assert _relative("/srv/home/olive", cwd) == expected


def test_modes_resolve_to_what_the_host_supports() -> None:
    assert resolve("none").mode == isolation.NONE
    missing = "no-such-bwrap-here"
    auto = resolve("auto", bwrap=missing)
    assert auto.mode == isolation.NONE
    assert auto.why.startswith(f"no sandbox on this host ({missing} (bubblewrap) is not installed)")
    assert "runs as the server's account" in auto.why  # said plainly on the pages
    insist = resolve("sandbox", bwrap=missing)
    assert insist.mode == "refused" and "do not start" in insist.why  # fails closed, not open
    assert resolve("account", "no-such-account-here").mode == "refused"
    if NO_SANDBOX is None:
        assert resolve("auto").mode == resolve("sandbox").mode == isolation.SANDBOX
    if NO_ACCOUNT is None:
        assert resolve("auto", ACCOUNT).mode == resolve("account", ACCOUNT).mode == isolation.ACCOUNT


# -- the sandbox, really run -----------------------------------------------------------

PROBE = r"""
import json, os, sys
out = {}
def attempt(name, fn):
    try:
        out[name] = ["ok", fn()]
    except Exception as e:
        out[name] = ["refused", type(e).__name__]
attempt("sibling", lambda: os.listdir(sys.argv[1]))
attempt("write data", lambda: open("data.txt", "w").write("x"))
attempt("write notebook", lambda: open("nb.ipynb", "w").write("{}"))
attempt("read connection", lambda: open(sys.argv[2]).read())
attempt("signal host", lambda: os.kill(int(sys.argv[3]), 0))
attempt("shadow", lambda: open("/etc/shadow").read()[:1])
attempt("home", lambda: open(os.path.expanduser("~/x"), "w").write("x"))
attempt("remount", lambda: os.system("mount -o remount,rw / 2>/dev/null") or "mounted")
print(json.dumps(out))
"""


@pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")
def test_a_sandboxed_process_sees_the_session_and_nothing_of_the_server(tmp_path: Path) -> None:
    b = box(tmp_path)
    notebook = Path(b.session) / "nb.ipynb"
    notebook.write_text('{"cells": []}')
    sibling = tmp_path / "server" / "lab2"
    sibling.mkdir()
    (sibling / "secret.txt").write_text("other session")
    b = Sandbox(b.session, b.cwd, b.connection_file, protect=protected_files(b.session))
    cmd = sandbox_command([sys.executable, "-c", PROBE, str(sibling), b.connection_file,
                           str(os.getpid())], b)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["sibling"] == ["refused", "FileNotFoundError"]
    assert seen["write data"][0] == "ok" and (Path(b.session) / "data.txt").read_text() == "x"
    assert seen["write notebook"][0] == "refused"
    assert notebook.read_text() == '{"cells": []}'
    assert seen["read connection"] == ["ok", '{"key": "k"}']
    assert seen["signal host"] == ["refused", "ProcessLookupError"]  # not even visible
    assert seen["shadow"][0] == "refused"
    assert seen["home"][0] == "ok"
    assert seen["remount"] != ["ok", "mounted"]


def test_a_home_inside_the_session_keeps_its_configuration_and_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for name in (".jupyter", ".local/share/jupyter/runtime", ".ssh", "work"):
        (home / name).mkdir(parents=True)
    (home / ".bashrc").write_text("")
    protect, hide = isolation.home_files(str(home), str(home), str(home / ".local/share/jupyter/runtime"))
    assert sorted(protect) == sorted(str(home / n) for n in (".bashrc", ".jupyter", ".local"))
    assert sorted(hide) == sorted([str(home / ".ssh"), str(home / ".local/share/jupyter/runtime")])
    # a session in a folder of the home sees none of it, so nothing is bound from it
    assert isolation.home_files(str(home), str(home / "work"), str(home / ".local")) == ((), ())


HOME_PROBE = r"""
import json, os, sys
out = {}
for name, fn in [
        ("write config", lambda: open(".jupyter/jupyter_server_config.py", "w").write("x")),
        ("write rc", lambda: open(".bashrc", "a").write("x")),
        ("write kernelspec", lambda: os.makedirs(".local/share/jupyter/kernels/evil")),
        ("read key", lambda: open(".ssh/id_rsa").read()),
        ("read other kernel", lambda: open(sys.argv[1]).read()),
        ("read own connection", lambda: open(sys.argv[2]).read()),
        ("write data", lambda: open("work/out.csv", "w").write("1"))]:
    try:
        out[name] = ["ok", fn()]
    except Exception as e:
        out[name] = ["refused", type(e).__name__]
print(json.dumps(out))
"""


@pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")
def test_a_kernel_of_a_whole_home_session_cannot_plant_code_or_read_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"  # fresh: no .jupyter yet, which the kernel must not create
    runtime = home / ".local/share/jupyter/runtime"
    for name in (".ssh", "work"):
        (home / name).mkdir(parents=True)
    runtime.mkdir(parents=True)
    (home / ".ssh/id_rsa").write_text("PRIVATE KEY")
    other, own = runtime / "kernel-other.json", runtime / "kernel-own.json"
    other.write_text('{"key": "other"}')
    own.write_text('{"key": "own"}')
    isolation.make_home_entries(str(home))  # what the provisioner does first
    assert (home / ".jupyter").is_dir() and (home / ".bashrc").read_text() == ""
    assert "~/.profile" in (home / ".bash_profile").read_text()
    protect, hide = isolation.home_files(str(home), str(home), str(runtime))
    b = Sandbox(str(home), str(home), str(own), protect=protect, hide=hide)
    done = subprocess.run(sandbox_command([sys.executable, "-c", HOME_PROBE, str(other), str(own)], b),
                          capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["write config"][0] == seen["write kernelspec"][0] == seen["write rc"][0] == "refused"
    assert seen["read key"][0] == seen["read other kernel"][0] == "refused"
    assert seen["read own connection"] == ["ok", '{"key": "own"}']
    assert seen["write data"][0] == "ok"
    assert not (home / ".jupyter/jupyter_server_config.py").exists()


def test_a_kernelspec_naming_another_provisioner_is_not_started() -> None:
    from types import SimpleNamespace

    from hub_rtc.singleuser.kernels import refuse_other_provisioners

    specs = {"python3": SimpleNamespace(metadata={}),
             "ours": SimpleNamespace(metadata={"kernel_provisioner": {
                 "provisioner_name": "hub-rtc-provisioner"}}),
             "evil": SimpleNamespace(metadata={"kernel_provisioner": {
                 "provisioner_name": "local-provisioner"}})}
    manager = SimpleNamespace(default_kernel_name="python3", kernel_spec_manager=SimpleNamespace(
        get_kernel_spec=lambda name: specs[name]))
    refuse_other_provisioners(manager, None)
    refuse_other_provisioners(manager, "ours")
    with pytest.raises(RuntimeError, match="names its own provisioner"):
        refuse_other_provisioners(manager, "evil")


def test_group_members_are_a_process_group_without_the_named_processes() -> None:
    leader = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while len(isolation.group_members(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = isolation.group_members(leader.pid)
        assert leader.pid in members and len(members) == 2  # sh and its sleep
        assert isolation.group_members(leader.pid, but="sh") == [p for p in members if p != leader.pid]
        assert os.getpid() not in members
    finally:
        os.killpg(leader.pid, 9)
        leader.wait()


async def test_a_kernel_whose_place_cannot_be_asked_is_never_in_no_session() -> None:
    """A restart while the service is down keeps the last answer; a first start is
    sandboxed in its own folder (policy auto) rather than run with the server's authority."""
    from hub_rtc.decision.access import Access
    from hub_rtc.singleuser.gate import UNREACHABLE
    from hub_rtc.singleuser.provisioner import HubRTCProvisioner, Placement

    answers = [Access.none(UNREACHABLE),
               Access(read=True, session_id="s1", root="lab", kernel_isolation="sandbox"),
               Access.none(UNREACHABLE), Access.none("not in a session")]

    async def locate(folder: str) -> Access:
        return answers.pop(0)

    placement = Placement("/srv/olive", locate, runtime="/srv/olive/.runtime")
    prov = HubRTCProvisioner(kernel_id="k1", kernel_spec=None, parent=None)
    first = await prov._session_at(placement, "/srv/olive/lab/sub")
    assert first is not None and first.session_id and first.root == "lab/sub"
    assert first.kernel_isolation == "auto"
    good = await prov._session_at(placement, "/srv/olive/lab")
    assert good is not None and good.session_id == "s1"
    again = await prov._session_at(placement, "/srv/olive/lab")
    assert again is good  # the service is down: as at the last start
    outside = await prov._session_at(placement, "/srv/olive/notes")
    assert outside is not None and outside.session_id is None  # it said: in no session
    assert await prov._session_at(placement, "/elsewhere") is None


ACCOUNT_PROBE = r"""
import json, os
out = {"uid": os.getuid(), "groups": os.getgroups()}
for name, fn in [("write data", lambda: open("data.txt", "w").write("x")),
                 ("write notebook", lambda: open("nb.ipynb", "a").write("x")),
                 ("read root's file", lambda: open("mine.txt").read()),
                 ("tmp", lambda: open("/tmp/t", "w").write("x")),
                 ("home", lambda: open(os.path.expanduser("~/h"), "w").write("x")),
                 ("become root", lambda: os.setuid(0))]:
    try:
        out[name] = ["ok", fn()]
    except Exception as e:
        out[name] = ["refused", type(e).__name__]
print(json.dumps(out))
"""


@pytest.mark.skipif(NO_ACCOUNT is not None, reason=f"no kernel account here: {NO_ACCOUNT}")
def test_a_kernel_as_its_own_account_has_the_os_permissions_too(tmp_path: Path) -> None:
    ids = isolation.account_ids(ACCOUNT)
    assert ids is not None
    b = box(tmp_path)
    session = Path(b.session)
    (session / "nb.ipynb").write_text("{}")  # the server's, as a notebook it saved
    (session / "mine.txt").write_text("the server's own")
    (session / "mine.txt").chmod(0o600)
    isolation.open_to(b.session, ids[1])
    assert session.stat().st_gid == ids[1] and session.stat().st_mode & 0o2070 == 0o2070
    os.chown(b.connection_file, *ids)
    b = Sandbox(b.session, b.cwd, b.connection_file, account=ids)  # no read-only binds at all
    done = subprocess.run(sandbox_command([sys.executable, "-c", ACCOUNT_PROBE], b),
                          capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["uid"] == ids[0] and seen["groups"] == []
    assert seen["write data"][0] == "ok" and (session / "data.txt").stat().st_uid == ids[0]
    # the permissions alone keep the server's files, where no bind would
    assert seen["write notebook"] == ["refused", "PermissionError"]
    assert seen["read root's file"] == ["refused", "PermissionError"]
    assert seen["tmp"][0] == seen["home"][0] == "ok"
    assert seen["become root"] == ["refused", "PermissionError"]


def test_a_python_inside_the_session_folder_stays_read_only(tmp_path: Path) -> None:
    b = box(tmp_path)
    venv = os.path.join(b.session, "venv")
    cmd = sandbox_command(["k"], Sandbox(b.session, b.cwd, b.connection_file, prefixes=(venv, "/usr")))
    binds = [i for i, a in enumerate(cmd) if a == "--ro-bind" and cmd[i + 1] == venv]
    assert binds and binds[-1] > cmd.index("--bind")  # after the writable session: it wins


async def test_the_owner_keeps_the_token_only_in_kernels_outside_every_session() -> None:
    """``owner_kernels_keep_token`` gives the owner's own kernels the token; never a session's,
    and nobody's without it.  Through the provisioner's own launch preparation."""
    from jupyter_client.kernelspec import KernelSpec

    from hub_rtc.decision.access import Access
    from hub_rtc.singleuser import provisioner as prov_module
    from hub_rtc.singleuser.provisioner import HubRTCProvisioner, Placement

    env = {"PATH": "/bin", "JUPYTERHUB_API_TOKEN": "server-token", "JPY_API_TOKEN": "server-token"}
    spec = KernelSpec(argv=["python", "-m", "ipykernel_launcher"], env={}, language="python")

    async def launched(session_id: str | None, keep: bool) -> dict[str, str]:
        async def locate(folder: str) -> Access:
            return Access(read=True, session_id=session_id, root="lab", kernel_isolation="none")

        prov_module.configure(Placement("/srv/olive", locate, keep, runtime="/srv/olive/.rt"))
        try:
            prov = HubRTCProvisioner(kernel_id="k1", kernel_spec=spec, parent=None)
            launch = await prov.pre_launch(env=dict(env), cwd="/srv/olive/lab")
            return dict(launch["env"])
        finally:
            prov_module.configure(None)

    assert (await launched(None, keep=True))["JUPYTERHUB_API_TOKEN"] == "server-token"
    for session_id, keep in [("s1", True), ("s1", False), (None, False)]:
        got = await launched(session_id, keep)
        assert "JUPYTERHUB_API_TOKEN" not in got and "JPY_API_TOKEN" not in got, (session_id, keep)
        assert got["PATH"] == "/bin"
