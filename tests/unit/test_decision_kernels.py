"""The rule for how a session's kernels run: the policy's wish and the host's ability."""

from __future__ import annotations

import pytest

from hub_rtc.decision.kernels import AS_THE_SERVER, kernel_isolation

CANNOT = "bwrap (bubblewrap) is not installed"
NO_ACCOUNT = "there is no account 'k' on this host"


@pytest.mark.parametrize(("policy", "cannot", "no_account", "mode"), [
    ("auto", None, None, "account"), ("account", None, None, "account"),
    ("sandbox", None, None, "sandbox"), ("none", None, None, "none"),
    ("auto", None, NO_ACCOUNT, "sandbox"), ("account", None, NO_ACCOUNT, "refused"),
    ("sandbox", None, NO_ACCOUNT, "sandbox"),
    ("auto", CANNOT, NO_ACCOUNT, "none"), ("auto", CANNOT, None, "none"),
    ("account", CANNOT, None, "refused"), ("sandbox", CANNOT, None, "refused"),
    ("none", CANNOT, NO_ACCOUNT, "none")])
def test_the_mode_for_each_policy_and_host(policy: str, cannot: str | None,
                                           no_account: str | None, mode: str) -> None:
    decided = kernel_isolation(policy, cannot, no_account)
    assert decided.mode == mode
    if mode == "none":  # people are told plainly what a runner can do then
        assert AS_THE_SERVER in decided.why
    if mode == "refused":  # and why the host could not do what the policy insists on
        assert (cannot or no_account or "") in decided.why and "do not start" in decided.why
    if cannot is not None and policy not in ("none", "account"):
        assert CANNOT in decided.why
