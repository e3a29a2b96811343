"""The file on disk as a principal: what it may say about ruled cells, and where it is
a runner's, about anything but outputs (pure)."""

from __future__ import annotations

from typing import Any

from hub_rtc.singleuser.disk import (
    MAX_NOTEBOOK_BYTES,
    NOTEBOOK_PART,
    comparable,
    deleted,
    fingerprint,
    fits,
    lean,
    restore,
    restore_run,
    shape,
    snapshot,
    whole_rows,
)


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


# -- a file that is a runner's: outputs and execution counts only ---------------------

RAN = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]


def notebook(*cells: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"cells": list(cells), "metadata": metadata if metadata is not None else {"kernelspec": {
        "name": "python3", "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}


AUTHORIZED = notebook(cell("a", "# a\n"), cell("m", "*m*", "markdown"), cell("b", "# b\n"))


def ran(c: dict[str, Any], count: int = 7) -> dict[str, Any]:
    return {**c, "outputs": RAN, "execution_count": count}


def test_outputs_and_counts_are_the_files_to_change() -> None:
    file = notebook(ran(AUTHORIZED["cells"][0]), AUTHORIZED["cells"][1], AUTHORIZED["cells"][2])
    same, changed = restore_run(file, AUTHORIZED)
    assert changed == [] and same is file
    # the service's baseline has no outputs at all: the same
    lean_whole = {**AUTHORIZED, "cells": [lean(c) for c in AUTHORIZED["cells"]]}
    assert restore_run(file, lean_whole) == (file, [])


def test_a_source_is_put_back_and_the_files_output_kept() -> None:
    file = notebook(ran({**AUTHORIZED["cells"][0], "source": "# HACKED\n"}),
                    *AUTHORIZED["cells"][1:])
    fixed, changed = restore_run(file, AUTHORIZED)
    assert changed == ["a"]
    assert fixed["cells"][0]["source"] == "# a\n" and fixed["cells"][0]["outputs"] == RAN
    assert fixed["cells"][0]["execution_count"] == 7 and fixed["cells"][1:] == file["cells"][1:]


def test_every_other_part_of_a_cell_counts() -> None:
    a = AUTHORIZED["cells"][0]
    for tampered in ({**a, "metadata": {"tags": ["x"]}}, {**a, "cell_type": "raw"},
                     {**a, "attachments": {"x.png": {}}}):
        fixed, changed = restore_run(notebook(tampered, *AUTHORIZED["cells"][1:]), AUTHORIZED)
        assert changed == ["a"] and lean(fixed["cells"][0]) == lean(a), tampered
    # a markdown cell made code, with outputs: put back, and it has no outputs
    m = {**AUTHORIZED["cells"][1], "cell_type": "code", "outputs": RAN, "execution_count": 1}
    fixed, changed = restore_run(notebook(AUTHORIZED["cells"][0], m, AUTHORIZED["cells"][2]),
                                 AUTHORIZED)
    assert changed == ["m"] and fixed["cells"][1] == AUTHORIZED["cells"][1]


def test_cells_added_deleted_or_moved_are_put_back() -> None:
    a, m, b = AUTHORIZED["cells"]
    new = cell("new", "# new\n")
    for cells, expected in [([a, new, m, b], ["new"]), ([a, b], ["m"]), ([b, a, m], ["b", "a", "m"]),
                            ([a, m, b, {**a}], ["a"])]:
        fixed, changed = restore_run(notebook(*cells), AUTHORIZED)
        assert ids(fixed["cells"]) == ["a", "m", "b"], cells
        assert sorted(changed) == sorted(expected), (cells, changed)


def test_a_deleted_code_cell_comes_back_with_the_authorized_outputs() -> None:
    """From the open room's document, which has them; from the service's, which has none."""
    room = notebook(ran(cell("a", "# a\n")), cell("b"))
    fixed, _ = restore_run(notebook(cell("b")), room)
    assert fixed["cells"][0]["outputs"] == RAN
    lean_room = {**room, "cells": [lean(c) for c in room["cells"]]}
    fixed, _ = restore_run(notebook(cell("b")), lean_room)
    assert fixed["cells"][0]["outputs"] == [] and fixed["cells"][0]["execution_count"] is None


def test_the_notebooks_own_metadata_is_put_back() -> None:
    a, m, b = AUTHORIZED["cells"]
    for file in (notebook(a, m, b, metadata={"kernelspec": {"name": "evil"}}),
                 {**notebook(a, m, b), "nbformat_minor": 4}):
        fixed, changed = restore_run(file, AUTHORIZED)
        assert changed == [NOTEBOOK_PART]
        assert (fixed["metadata"], fixed["nbformat_minor"]) == (AUTHORIZED["metadata"], 5)


def test_what_the_rooms_document_adds_on_its_own_is_no_change() -> None:
    """jupyter_ydoc fills in empty language_info and kernelspec, and drops empty
    attachments; jupyter_server marks cells trusted on reading."""
    room = notebook(cell("m", "*m*", "markdown"), metadata={"language_info": {"name": ""},
                    "kernelspec": {"name": "", "display_name": ""}})
    file = notebook({**cell("m", "*m*", "markdown"), "attachments": {},
                     "metadata": {"trusted": True}}, metadata={})
    assert restore_run(file, room) == (file, [])


def test_cells_without_ids_are_named_by_position() -> None:
    old = {**notebook({"cell_type": "code", "source": "x", "metadata": {}, "outputs": [],
                       "execution_count": None}), "nbformat_minor": 4}
    tampered = {**old, "cells": [{**old["cells"][0], "source": "HACKED", "outputs": RAN}]}
    fixed, changed = restore_run(tampered, old)
    assert changed == ["#0"] and fixed["cells"][0]["source"] == "x"
    assert fixed["cells"][0]["outputs"] == RAN


def test_the_whole_baseline_is_every_unruled_cell_without_outputs_and_the_order() -> None:
    content = notebook(ran(cell("a", "# a\n")), cell("locked", "# l\n"), cell("b"))
    rows, order = whole_rows(content, {"locked"})
    assert set(rows) == {"a", "b"}  # the ruled cell has its own baseline, outputs and all
    assert rows["a"] == {"cell": lean(content["cells"][0]), "after": None, "present": True}
    assert "outputs" not in rows["a"]["cell"] and "execution_count" not in rows["a"]["cell"]
    assert order == {**shape(content), "order": ["a", "locked", "b"]}
    assert fits(rows, order)
    huge = notebook(*(cell(f"c{i}", "x" * (MAX_NOTEBOOK_BYTES // 4)) for i in range(5)))
    assert not fits(*whole_rows(huge, set()))
    assert not fits(*whole_rows(notebook(cell("x" * 256)), set()))  # longer than the service keeps
    # outputs never count: they are not kept
    loud = notebook(ran(cell("a")) | {"outputs": [{"text": "x" * MAX_NOTEBOOK_BYTES}]})
    assert fits(*whole_rows(loud, set()))


def test_the_whole_baseline_puts_back_what_it_was_made_from() -> None:
    """Round trip: what the service is sent is what a later load is held to."""
    saved = notebook(ran(cell("a", "# a\n")), cell("m", "*m*", "markdown"), cell("b"))
    rows, order = whole_rows(saved, set())
    served = {**order, "cells": [rows[name]["cell"] for name in order["order"]]}
    later = notebook(ran(cell("a", "# a\n"), 9), cell("m", "*m*", "markdown"),
                     ran(cell("b", "# HACKED\n")))
    fixed, changed = restore_run(later, served)
    assert changed == ["b"] and fixed["cells"][2]["source"] == "" and fixed["cells"][2]["outputs"] == RAN
    assert fixed["cells"][0]["execution_count"] == 9


def test_a_checkpoint_is_known_by_its_fingerprint() -> None:
    """A notebook and the same notebook saved and read back (sources as lines, cells
    marked trusted) are one; any change, outputs included, is another."""
    saved = notebook(ran(cell("a", "# a\nx\n")), cell("m", "*m*", "markdown"))
    read_back = {**saved, "cells": [{**saved["cells"][0], "source": ["# a\n", "x\n"],
                                     "metadata": {"trusted": True}}, saved["cells"][1]]}
    assert fingerprint(read_back) == fingerprint(saved)
    for other in ({**saved, "cells": [ran(saved["cells"][0], 8), saved["cells"][1]]},
                  {**saved, "cells": saved["cells"][::-1]},
                  {**saved, "metadata": {"HACKED": True}}):
        assert fingerprint(other) != fingerprint(saved)
