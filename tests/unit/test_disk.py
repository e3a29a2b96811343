"""The file on disk as a principal: what it may say about ruled cells (pure)."""

from __future__ import annotations

from typing import Any

from hub_rtc.singleuser.disk import comparable, deleted, restore, snapshot


def cell(cell_id: Any, source: str = "", kind: str = "code") -> dict[str, Any]:
    out: dict[str, Any] = {"id": cell_id, "cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        out.update(outputs=[], execution_count=None)
    return out


NOTEBOOK = [cell("a", "# a\n"), cell("locked", "# locked\n"), cell("b", "# b\n")]
BASE = snapshot(NOTEBOOK, {"locked"})


def ids(cells: list[dict[str, Any]]) -> list[Any]:
    return [c["id"] for c in cells]


def test_a_baseline_is_the_cell_and_the_one_before_it() -> None:
    assert BASE == {"locked": {"cell": comparable(NOTEBOOK[1]), "after": "a", "present": True}}
    assert snapshot(NOTEBOOK, {"a"})["a"]["after"] is None
    assert snapshot(NOTEBOOK, {"nowhere"}) == {}


def test_an_unchanged_file_is_left_alone() -> None:
    same, changed = restore([dict(c) for c in NOTEBOOK], BASE)
    assert changed == [] and same == NOTEBOOK
    # nbformat on disk keeps sources as lines: the same cell
    lines = [*NOTEBOOK[:1], {**NOTEBOOK[1], "source": ["# locked\n"]}, *NOTEBOOK[2:]]
    assert restore(lines, BASE)[1] == []


def test_a_rewritten_ruled_cell_is_put_back_and_others_are_kept() -> None:
    tampered = [cell("a", "# a, edited\n"), cell("locked", "# HACKED\n"), cell("b", "# b\n")]
    fixed, changed = restore(tampered, BASE)
    assert changed == ["locked"]
    assert [c["source"] for c in fixed] == ["# a, edited\n", "# locked\n", "# b\n"]


def test_other_parts_of_a_ruled_cell_count_too() -> None:
    for key, value in [("metadata", {"editable": True}), ("outputs", [{"output_type": "stream",
                       "name": "stdout", "text": "fake"}]), ("cell_type", "markdown")]:
        tampered = [NOTEBOOK[0], {**NOTEBOOK[1], key: value}, NOTEBOOK[2]]
        fixed, changed = restore(tampered, BASE)
        assert changed == ["locked"] and comparable(fixed[1]) == BASE["locked"]["cell"], key


def test_a_deleted_or_moved_ruled_cell_comes_back_in_its_place() -> None:
    fixed, changed = restore([NOTEBOOK[0], NOTEBOOK[2]], BASE)
    assert changed == ["locked"] and ids(fixed) == ["a", "locked", "b"]
    fixed, _ = restore([NOTEBOOK[2], NOTEBOOK[1], NOTEBOOK[0]], BASE)
    assert ids(fixed) == ["b", "a", "locked"]  # after "a", wherever "a" went
    fixed, _ = restore([NOTEBOOK[2], NOTEBOOK[1]], BASE)  # "a" gone too: where the file had it
    assert ids(fixed) == ["b", "locked"]


def test_an_impostor_with_the_ruled_id_is_removed() -> None:
    impostor = cell("locked", "# mine now\n")
    fixed, changed = restore([impostor, *NOTEBOOK], BASE)
    assert changed == ["locked"]
    assert ids(fixed) == ["a", "locked", "b"] and fixed[1]["source"] == "# locked\n"


def test_a_cell_deleted_in_the_room_may_not_come_back_from_the_file() -> None:
    gone = deleted(BASE, {}, {"locked"})
    assert gone == {"locked": {"cell": {}, "after": None, "present": False}}
    fixed, changed = restore([dict(c) for c in NOTEBOOK], gone)
    assert changed == ["locked"] and ids(fixed) == ["a", "b"]
    assert restore([NOTEBOOK[0]], gone) == ([NOTEBOOK[0]], [])
    assert deleted(BASE, {}, set()) == {}  # no rule any more: nothing to keep


def test_a_duplicate_keeps_the_first_as_the_saved_file_reads_back() -> None:
    doubled = [NOTEBOOK[0], cell("locked", "# first\n"), cell("locked", "# second\n")]
    assert snapshot(doubled, {"locked"})["locked"]["cell"]["source"] == "# first\n"
    fixed, changed = restore(doubled, BASE)
    assert changed == ["locked"] and ids(fixed) == ["a", "locked"]


def test_the_baseline_is_a_copy() -> None:
    notebook = [cell("locked", "x")]
    base = snapshot(notebook, {"locked"})
    notebook[0]["metadata"]["changed"] = True
    assert base["locked"]["cell"]["metadata"] == {}
    fixed, _ = restore([], base)
    fixed[0]["metadata"]["later"] = 1
    assert base["locked"]["cell"]["metadata"] == {}


def test_the_real_cell_nbformat_renamed_behind_an_impostor_goes() -> None:
    """nbformat reads [impostor 'locked', …, real 'locked'] as [impostor, …, real as 'x1']."""
    renamed = {**NOTEBOOK[1], "id": "x1"}
    as_read = [cell("locked", "# mine now\n"), NOTEBOOK[0], renamed, NOTEBOOK[2]]
    fixed, changed = restore(as_read, BASE)
    assert changed == ["locked"] and ids(fixed) == ["a", "locked", "b"]
    # a copy the open room really has stays
    fixed, _ = restore(as_read, BASE, known={"a", "locked", "b", "x1"})
    assert ids(fixed) == ["a", "locked", "x1", "b"]
    # an identical copy next to an untouched ruled cell is nobody's business
    assert restore([*NOTEBOOK, renamed], BASE) == ([*NOTEBOOK, renamed], [])


def test_trust_marks_are_not_content() -> None:
    """jupyter_server marks cells trusted by the file's signature when it reads them,
    and a rewritten file loses it: that alone changes nothing."""
    marked = [{**c, "metadata": {"trusted": False}} for c in NOTEBOOK]
    assert restore(marked, BASE)[1] == []
    assert snapshot([{**NOTEBOOK[1], "metadata": {"trusted": True}}], {"locked"})["locked"]["cell"][
        "metadata"] == {}
