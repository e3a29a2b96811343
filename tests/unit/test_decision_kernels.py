"""The rule for how a session's kernels run: the policy's wish and the host's ability."""

from __future__ import annotations

import pytest

from hub_rtc.decision.kernels import AS_THE_SERVER, kernel_isolation

CANNOT = "bwrap (bubblewrap) is not installed"


@pytest.mark.parametrize(("policy", "cannot", "mode"), [
    ("auto", None, "sandbox"), ("sandbox", None, "sandbox"), ("none", None, "none"),
    ("auto", CANNOT, "none"), ("sandbox", CANNOT, "refused"), ("none", CANNOT, "none")])
def test_the_mode_for_each_policy_and_host(policy: str, cannot: str | None, mode: str) -> None:
    decided = kernel_isolation(policy, cannot)
    assert decided.mode == mode
    if mode == "none":  # people are told plainly what a runner can do then
        assert AS_THE_SERVER in decided.why
    if cannot is not None and policy != "none":
        assert CANNOT in decided.why  # and why the host could not do better
