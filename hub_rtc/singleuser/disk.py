"""The file on disk is a principal too.

jupyter-collaboration loads a notebook into its room from the file: when the
room starts (after a restart of the server, or once every client left) and
whenever the file changes out of band.  Code run in a session's kernel can
write that file, and the update store beside it, so what they say about a
ruled (locked or assigned) cell is believed only if it matches the last
authorized state:

- while the room is open, the room's own document (everything in it passed
  the guard);
- otherwise the baseline the service keeps (``/servers/baselines``), out of
  the kernels' reach, which this module sends after every notebook save
  through the server's contents manager: the room's own saves, and writes the
  Authorizer let through (it lets nobody with protected cells write a notebook
  wholesale).  Only writes that bypass the contents manager are the file
  speaking for itself.

A ruled cell the file changed, moved, duplicated, added or dropped is put
back before the room sees it, the file is saved again, and the attempt is
counted as refused, by :data:`THE_FILE`.  With no baseline anywhere yet (a
rule made while the notebook was closed), the file is believed once and its
cells become the baseline.

Every notebook load of every guarded room goes through the wrapper
:meth:`DiskGuard.protect` puts on the room's ``FileLoader``; the pure
:func:`restore` and :func:`snapshot` do the work and are tested alone.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Iterable
from typing import Any

from jupyter_server.utils import ensure_async

from .service import ServiceClient, ServiceUnavailable
from .tally import Tally

#: who refusals of out-of-band changes are counted for in the activity log
THE_FILE = "(the file on disk)"
#: how long the list of ruled cells of a notebook is reused when saving
RULED_SECONDS = 5.0

Cell = dict[str, Any]
Baseline = dict[str, Any]  # {"cell": Cell, "after": str | None, "present": bool}


# -- pure: what the file may say -------------------------------------------------


def comparable(cell: Cell) -> Cell:
    """What of a cell is compared and kept: what nbformat saves.  It keeps
    ``source`` as lines on disk and as one string in memory, and marks code
    cells ``metadata.trusted`` on reading (by the notebook's signature, which a
    rewritten file loses), which it never saves."""
    out = {key: value for key, value in cell.items() if key not in ("source", "metadata")}
    source = cell.get("source", "")
    out["source"] = "".join(source) if isinstance(source, list) else source
    metadata = cell.get("metadata")
    out["metadata"] = ({k: v for k, v in metadata.items() if k != "trusted"}
                       if isinstance(metadata, dict) else metadata)
    return out


def snapshot(cells: list[Cell], ruled: Iterable[str]) -> dict[str, Baseline]:
    """Baselines of the ruled cells present in ``cells`` (an nbformat cell list):
    each one's content and the id of the cell before it.  A ruled id that occurs
    twice keeps its first occurrence, as the saved file reads back."""
    wanted = set(ruled)
    out: dict[str, Baseline] = {}
    before: str | None = None
    for cell in cells:
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and cell_id in wanted and cell_id not in out:
            out[cell_id] = {"cell": comparable(copy.deepcopy(cell)), "after": before, "present": True}
        if isinstance(cell_id, str):
            before = cell_id
    return out


def restore(cells: list[Cell], baselines: dict[str, Baseline], known: set[str] | None = None
            ) -> tuple[list[Cell], list[str]]:
    """``cells`` with every ruled cell as its baseline says, and the ids put back.

    A present ruled cell occurs exactly once, with its baseline content, right
    after the cell its baseline names (first if it names none; where it was if
    that cell is gone): a ruled cell may not be moved, in the room or on disk.
    An absent one does not occur at all.  Other cells stay as the file has them,
    but for one: nbformat reads a file with two cells of one id by giving the
    later one a new random id, so a file that puts an impostor ahead of a ruled
    cell arrives with the real cell renamed.  A cell that is the displaced ruled
    cell's baseline under an id not in ``known`` (the open room's ids; None: any
    id) is that copy, and goes.
    """
    out = list(cells)
    changed: list[str] = []
    for cell_id in sorted(baselines):
        base = baselines[cell_id]
        places = [i for i, cell in enumerate(out) if cell.get("id") == cell_id]
        if base.get("present", True):
            if len(places) == 1 and _in_place(out, places[0], base):
                continue
            out = _put_back(out, places, cell_id, base)
            out = [c for c in out if not _renamed_copy(c, cell_id, base, known)]
        elif places:
            out = [cell for cell in out if cell.get("id") != cell_id]
        else:
            continue
        changed.append(cell_id)
    return out, changed


def _renamed_copy(cell: Cell, cell_id: str, base: Baseline, known: set[str] | None) -> bool:
    other = cell.get("id")
    if other == cell_id or (known is not None and other in known):
        return False
    return {**comparable(cell), "id": cell_id} == base["cell"]


def _in_place(cells: list[Cell], index: int, base: Baseline) -> bool:
    """Unchanged, and still right after the cell it followed (when that one is there)."""
    if comparable(cells[index]) != base["cell"]:
        return False
    after = base.get("after")
    if after is None:
        return index == 0
    if not any(cell.get("id") == after for cell in cells):
        return True  # its neighbour went: where it is now is as good as any
    return index > 0 and cells[index - 1].get("id") == after


def _put_back(cells: list[Cell], places: list[int], cell_id: str, base: Baseline) -> list[Cell]:
    kept = [cell for cell in cells if cell.get("id") != cell_id]
    after = base.get("after")
    anchors = [i for i, cell in enumerate(kept) if after is not None and cell.get("id") == after]
    if after is None:
        index = 0
    elif anchors:
        index = anchors[0] + 1
    else:  # the cell before it is gone too: where the file first had it, else at the end
        index = min(places[0], len(kept)) if places else len(kept)
    return [*kept[:index], copy.deepcopy(base["cell"]), *kept[index:]]


def deleted(previous: dict[str, Baseline], now: dict[str, Baseline], ruled: set[str]
            ) -> dict[str, Baseline]:
    """Ruled cells that were present and are gone: an allowed delete in the room."""
    return {cid: {"cell": {}, "after": None, "present": False}
            for cid, base in previous.items()
            if cid in ruled and cid not in now and base.get("present", True)}


# -- wiring: the room's file loader -----------------------------------------------


class _Ruled:
    """What the service said about one notebook, and when."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.session_id: str | None = answer.get("session")
        self.path: str = answer.get("path") or ""
        self.ids: set[str] = set(answer.get("ruled") or ())
        self.kept: dict[str, Baseline] = {  # as snapshot() makes them, to compare
            cid: {key: base.get(key) for key in ("cell", "after", "present")}
            for cid, base in (answer.get("cells") or {}).items()}
        self.at = time.monotonic()


class DiskGuard:
    """Checks every notebook a guarded room loads from disk; keeps baselines current."""

    def __init__(self, client: ServiceClient | None, tally: Tally, log: logging.Logger) -> None:
        self.client = client
        self.tally = tally
        self.log = log
        self._ruled: dict[str, _Ruled] = {}  # server path -> last answer
        self._reported: dict[str, dict[str, Baseline]] = {}  # server path -> last sent
        self._tasks: set[asyncio.Task[None]] = set()
        self._refreshed: dict[str, float] = {}
        self._trusted: dict[str, list[Cell]] = {}  # server path -> cells last saved in-process

    def protect(self, room: Any) -> None:
        """Wrap the file loader of a notebook ``room`` (once per loader; a loader
        outlives a room that closes, and serves the next one)."""
        room._file.hub_rtc_room = room  # the room whose document is the authorized state
        self.protect_loader(room._file)

    def protect_loader(self, loader: Any) -> None:
        """Check every notebook ``loader`` loads, for whichever room it loads it
        (also rooms other extensions start through ``get_document``)."""
        if getattr(loader, "hub_rtc_guarded", False):
            return
        loader.hub_rtc_guarded = True
        if not hasattr(loader, "hub_rtc_room"):
            loader.hub_rtc_room = None  # no guarded room yet: the service's baselines count
        load = loader.load_content

        async def load_content(file_format: str, file_type: str) -> dict[str, Any]:
            model = await load(file_format, file_type)
            if file_type == "notebook" and isinstance(model.get("content"), dict):
                await self._check(loader, loader.hub_rtc_room, model)
            return dict(model)

        loader.load_content = load_content

    def trust_saves(self, contents_manager: Any) -> None:
        """What the server's contents manager saves is authorized: the Authorizer let
        its writer write (a notebook with cells they may not change is never written
        that way), or it is the guarded room's own document.  Only writes that bypass
        it (code in a kernel, another process) are the file speaking for itself."""
        save = contents_manager.save

        async def saving(model: dict[str, Any], path: str = "") -> Any:
            saved = await ensure_async(save(model, path))
            if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
                clean = path.strip("/")
                self._trusted[clean] = list(model["content"].get("cells") or [])
                self._later(self._saved(clean, model["content"]))
            return saved

        contents_manager.save = saving

    # -- loading -------------------------------------------------------------------

    async def _check(self, loader: Any, room: Any, model: dict[str, Any]) -> None:
        path = str(loader.path).strip("/")
        ruled = await self._ask(path)  # ServiceUnavailable: the room does not load (fail closed)
        if ruled.session_id is None or not ruled.ids:
            return
        cells = list(model["content"].get("cells") or [])
        trusted = self._trusted.get(path)
        if trusted is not None and snapshot(trusted, ruled.ids) == snapshot(cells, ruled.ids):
            return  # what the server itself last saved there: authorized already
        baselines, known = self._baselines(room, ruled)
        fixed, changed = restore(cells, baselines, known)
        if changed:
            model["content"] = {**model["content"], "cells": fixed}
            self._refused(ruled, path, changed)
            self._later(self._resave(loader, model))
        unknown = {cid: b for cid, b in snapshot(fixed, ruled.ids).items() if cid not in ruled.kept}
        if unknown:
            self._later(self._keep(path, unknown))

    def _baselines(self, room: Any, ruled: _Ruled) -> tuple[dict[str, Baseline], set[str] | None]:
        """The authorized state of each ruled cell (the open room's, else the service's),
        and the cell ids the open room has (None: no room open)."""
        if getattr(room, "ready", False):
            live = room._document.get()["cells"]
            now = snapshot(live, ruled.ids)
            gone: dict[str, Baseline] = {cid: {"cell": {}, "after": None, "present": False}
                                         for cid in ruled.ids if cid not in now}
            return {**gone, **now}, {str(c.get("id")) for c in live}
        return {cid: base for cid, base in ruled.kept.items() if cid in ruled.ids}, None

    def _refused(self, ruled: _Ruled, path: str, changed: list[str]) -> None:
        self.log.warning("hub_rtc: %s changed ruled cells %s of %s out of band; put back",
                         THE_FILE, ", ".join(changed), path)
        assert ruled.session_id is not None
        for cell_id in changed:
            self.tally.add(ruled.session_id, THE_FILE, "refused", ruled.path, cell_id)

    async def _resave(self, loader: Any, model: dict[str, Any]) -> None:
        """Write the put-back notebook over what the file said."""
        try:
            await loader.maybe_save_content({"format": "json", "type": "notebook",
                                             "content": model["content"]})
        except Exception:  # the room's next save writes it anyway
            self.log.exception("hub_rtc: saving %s back after an out-of-band change failed",
                               model.get("path"))

    # -- saving --------------------------------------------------------------------

    async def _saved(self, path: str, content: dict[str, Any]) -> None:
        """After the room saved: send what changed in its ruled cells."""
        path = path.strip("/")
        ruled = self._ruled.get(path)
        if ruled is None or time.monotonic() - ruled.at > RULED_SECONDS:
            ruled = await self._ask(path)
        if ruled.session_id is None or not ruled.ids:
            return
        now = snapshot(list(content.get("cells") or []), ruled.ids)
        previous = self._reported.get(path, ruled.kept)
        changed = {cid: b for cid, b in now.items() if previous.get(cid) != b}
        changed.update(deleted(previous, now, ruled.ids))
        if changed:
            await self._keep(path, changed)

    def refresh(self, room: Any) -> None:
        """Rules may have changed (the service pushed): keep baselines of newly ruled
        cells from the open room soon, not only at its next save.  In the background:
        a change of rights is in force before this is done."""
        if not getattr(room, "ready", False):
            return
        path = str(room._file.path).strip("/")
        if time.monotonic() - self._refreshed.get(path, -1.0) < 0.5:
            return  # one push re-checks every socket of the room: one refresh will do
        self._refreshed[path] = time.monotonic()
        self._ruled.pop(path, None)
        self._later(self._saved(path, room._document.get()))

    async def _keep(self, path: str, cells: dict[str, Baseline]) -> None:
        if self.client is None:
            return
        try:
            await self.client.keep_baselines(path, cells)
        except ServiceUnavailable as e:
            self.log.warning("hub_rtc: baselines of %s not kept yet: %s", path, e)
            self._reported.pop(path, None)  # send everything again at the next save
            return
        self._reported.setdefault(path, {}).update(cells)

    async def _ask(self, path: str) -> _Ruled:
        if self.client is None:
            return _Ruled({})
        ruled = _Ruled(await self.client.baselines(path))
        self._ruled[path] = ruled
        # the service's word is what was kept: a rule made anew starts with nothing
        self._reported[path] = dict(ruled.kept)
        return ruled

    def _later(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("hub_rtc: keeping baselines failed", exc_info=task.exception())
