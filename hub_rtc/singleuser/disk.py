"""The file on disk is a principal too.

jupyter-collaboration loads a notebook into its room from the file: when the
room starts (after a restart of the server, or once every client left) and
whenever the file changes out of band.  Code run in a session's kernel can
write that file, and the update store beside it, so the file is held to what
the least trusted member who could have written it may change
(:func:`hub_rtc.decision.file_may`, which the service answers with):

- ruled (locked or assigned) cells, always: whatever the file says about one
  is believed only if it matches the last authorized state;
- where someone may run code but not edit (``file_may == "run"``), everything
  but the outputs and execution counts of code cells: sources, cell types,
  metadata, which cells there are and in what order, the notebook's metadata.

The last authorized state is:

- while the room is open, the room's own document (everything in it passed
  the guard);
- otherwise the baseline the service keeps (``/servers/baselines``), out of
  the kernels' reach, which this module sends after every notebook save
  through the server's contents manager: the room's own saves, writes and
  checkpoint restores the Authorizer let through (it lets nobody with
  protected cells write a notebook wholesale).  Where the file is a runner's,
  that is every cell without its outputs and the notebook's shape, up to
  :data:`MAX_NOTEBOOK_BYTES`.  Only writes that bypass the contents manager
  are the file speaking for itself.

What the file may not change is put back before the room sees it, the file
is saved again, and the attempt is counted as refused, by :data:`THE_FILE`.
With no baseline anywhere yet (a rule made, or a runner added, while the
notebook was closed), the file is believed once and becomes the baseline.

Every notebook load of every guarded room goes through the wrapper
:meth:`DiskGuard.protect` puts on the room's ``FileLoader``; the pure
:func:`restore`, :func:`restore_run`, :func:`snapshot` and :func:`whole_rows`
do the work and are tested alone.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any

from jupyter_server.utils import ensure_async

from ..guard.rights import RUN_PARTS  # the parts of a code cell a runner (and so its file) may change
from .service import ServiceClient, ServiceUnavailable
from .tally import Tally

#: who refusals of out-of-band changes are counted for in the activity log
THE_FILE = "(the file on disk)"
#: how long the list of ruled cells of a notebook is reused when saving
RULED_SECONDS = 5.0
#: how long a load waits for a trusted write of the same file to finish
WRITE_SECONDS = 30.0
#: the service's limits (hub_rtc.manager.hosting.baselines): a cell's baseline, and the whole
#: notebook's without outputs; above them the whole notebook is not kept, and the file
#: is believed for its unruled cells while the room is closed (said in the log)
MAX_CELL_BYTES = 2 * 1024 * 1024
MAX_NOTEBOOK_BYTES = 8 * 1024 * 1024
#: the longest cell id the service keeps (nbformat allows 64)
MAX_ID = 255
#: in a list of what the file changed: the notebook's own metadata or format
NOTEBOOK_PART = ""
#: how many checkpoints of one notebook are remembered as made of authorized content
CHECKPOINTS_KEPT = 16

Cell = dict[str, Any]
Baseline = dict[str, Any]  # {"cell": Cell, "after": str | None, "present": bool}
Notebook = dict[str, Any]  # nbformat content: cells, metadata, nbformat, nbformat_minor
Shape = dict[str, Any]  # {"metadata", "nbformat", "nbformat_minor", "order": [keys]}


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
    if out.get("attachments") == {}:  # the room's document drops empty attachments
        del out["attachments"]
    return out


def lean(cell: Cell) -> Cell:
    """What of a cell a runner's file may not change: all but outputs and execution count."""
    return {key: value for key, value in comparable(cell).items() if key not in RUN_PARTS}


def key(cell: Cell, index: int) -> str:
    """A cell's name in a notebook: its id; by position in notebooks too old for ids
    (nbformat < 4.5; no real id has a ``#``)."""
    cell_id = cell.get("id")
    return cell_id if isinstance(cell_id, str) and cell_id else f"#{index}"


def notebook_metadata(metadata: Any) -> Any:
    """The notebook's metadata without what the room's document adds on its own
    (jupyter_ydoc fills in empty ``language_info`` and ``kernelspec``)."""
    if not isinstance(metadata, dict):
        return metadata
    out = dict(metadata)
    if out.get("language_info") == {"name": ""}:
        del out["language_info"]
    if out.get("kernelspec") == {"name": "", "display_name": ""}:
        del out["kernelspec"]
    return out


def shape(content: Notebook) -> Shape:
    """A notebook's own parts and the order of its cells (each cell once)."""
    order: list[str] = []
    for index, cell in enumerate(content.get("cells") or []):
        if (name := key(cell, index)) not in order:
            order.append(name)
    metadata, nbformat, minor = _own(content)
    return {"metadata": metadata, "nbformat": nbformat, "nbformat_minor": minor, "order": order}


def whole_rows(content: Notebook, ruled: Iterable[str]) -> tuple[dict[str, Baseline], Shape]:
    """What the service keeps of a notebook whose file is a runner's, beside the ruled
    cells' own baselines: every other cell without outputs, and its shape."""
    wanted = set(ruled)
    rows: dict[str, Baseline] = {}
    for index, cell in enumerate(content.get("cells") or []):
        name = key(cell, index)
        if name not in wanted and name not in rows:
            rows[name] = {"cell": copy.deepcopy(lean(cell)), "after": None, "present": True}
    return rows, shape(content)


def fits(rows: dict[str, Baseline], notebook: Shape) -> bool:
    """Within the service's limits (it checks them again)."""
    sizes = [len(json.dumps(row["cell"])) for row in rows.values()]
    return (all(len(name) <= MAX_ID for name in notebook.get("order") or ())
            and all(size <= MAX_CELL_BYTES for size in sizes)
            and sum(sizes) + len(json.dumps(notebook)) <= MAX_NOTEBOOK_BYTES)


def restore_run(content: Notebook, authorized: Notebook) -> tuple[Notebook, list[str]]:
    """``content`` as a runner may have changed ``authorized``: the cells of
    ``authorized`` in its order (each name once), each as it has it but for the outputs
    and execution count of a code cell the file has too; and what was put back (cell
    names, :data:`NOTEBOOK_PART` for the notebook's metadata or format).
    ``authorized`` may carry outputs (the open room's document) or not (the service's
    baseline): a cell the file dropped comes back with those.  Unchanged, ``content``
    itself is returned."""
    cells = list(content.get("cells") or [])
    theirs: dict[str, Cell] = {}
    for index, cell in enumerate(cells):
        theirs.setdefault(key(cell, index), cell)
    first: dict[str, Cell] = {}
    for index, cell in enumerate(authorized.get("cells") or []):
        first.setdefault(key(cell, index), cell)
    ours = list(first.items())
    known = set(first)
    changed = [name for name, cell in ours if name not in theirs or lean(theirs[name]) != lean(cell)]
    changed += [name for name in theirs if name not in known]  # added
    changed += [key(c, i) for i, c in enumerate(cells) if theirs[key(c, i)] is not c]  # doubled
    mine = [name for name, _ in ours if name in theirs]
    moved = [a for a, b in zip([name for name in theirs if name in known], mine, strict=True) if a != b]
    changed += moved  # the order is the authorized one
    if _own(content) != _own(authorized):
        changed.append(NOTEBOOK_PART)
    if not changed:
        return content, []
    out = dict(content)
    if NOTEBOOK_PART in changed:
        out.update({part: copy.deepcopy(authorized.get(part)) for part in _OWN})
    out["cells"] = [_as_authorized(theirs.get(name), cell) for name, cell in ours]
    return out, list(dict.fromkeys(changed))


_OWN = ("metadata", "nbformat", "nbformat_minor")


def fingerprint(content: Notebook) -> str:
    """A digest of everything :func:`comparable` compares in a notebook, outputs included:
    equal for a notebook and the same notebook saved and read back."""
    body = {"cells": [comparable(cell) for cell in content.get("cells") or []],
            "own": _own(content)}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _own(content: Notebook) -> tuple[Any, ...]:
    """The notebook's own parts, as compared."""
    return (notebook_metadata(content.get("metadata") or {}), content.get("nbformat"),
            content.get("nbformat_minor"))


def _as_authorized(file_cell: Cell | None, cell: Cell) -> Cell:
    """The authorized ``cell``, with the file's outputs if both are code cells."""
    if file_cell is not None and lean(file_cell) == lean(cell):
        return file_cell  # untouched: as the file has it
    out = copy.deepcopy(cell)
    if out.get("cell_type") != "code":
        return out
    if file_cell is not None and file_cell.get("cell_type") == "code":
        out["outputs"] = copy.deepcopy(file_cell.get("outputs") or [])
        out["execution_count"] = file_cell.get("execution_count")
    else:
        out.setdefault("outputs", [])
        out.setdefault("execution_count", None)
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
            cid: {part: base.get(part) for part in ("cell", "after", "present")}
            for cid, base in (answer.get("cells") or {}).items()}
        #: "run": someone may run code but not edit, and the file is held to that
        self.runs: bool = answer.get("file_may") == "run"
        #: the whole notebook's baseline (cells without outputs), if the service has it
        self.whole: Notebook | None = answer.get("notebook") if self.runs else None
        self.at = time.monotonic()

    @property
    def guarded(self) -> bool:
        """Whether the file is held to anything at all."""
        return self.session_id is not None and (self.runs or bool(self.ids))

    def reported(self) -> tuple[dict[str, Baseline], Shape | None]:
        """What the service holds, in the form this module sends it."""
        rows = dict(self.kept)
        if self.whole is None:
            return rows, None
        for name, cell in zip(self.whole.get("order") or (), self.whole.get("cells") or (),
                              strict=False):
            if name not in self.ids:
                rows[name] = {"cell": cell, "after": None, "present": True}
        return rows, shape(self.whole)


_GONE: Baseline = {"cell": {}, "after": None, "present": False}


class DiskGuard:
    """Checks every notebook a guarded room loads from disk; keeps baselines current."""

    def __init__(self, client: ServiceClient | None, tally: Tally, log: logging.Logger) -> None:
        self.client = client
        self.tally = tally
        self.log = log
        self._ruled: dict[str, _Ruled] = {}  # server path -> last answer
        self._reported: dict[str, dict[str, Baseline]] = {}  # server path -> last sent
        self._shapes: dict[str, Shape | None] = {}  # server path -> whole notebook's shape sent
        self._too_large: set[str] = set()  # server paths whose whole baseline is not kept
        self._tasks: set[asyncio.Task[None]] = set()
        self._refreshed: dict[str, float] = {}
        self._trusted: dict[str, Notebook] = {}  # server path -> content last written in-process
        self._writing: dict[str, asyncio.Event] = {}  # server path -> a trusted write under way
        #: server path -> fingerprints of authorized content its checkpoints were made of
        self._checkpoints: dict[str, list[str]] = {}
        self._loaders: weakref.WeakSet[Any] = weakref.WeakSet()  # every loader protected

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
        self._loaders.add(loader)
        if not hasattr(loader, "hub_rtc_room"):
            loader.hub_rtc_room = None  # no guarded room yet: the service's baselines count
        load = loader.load_content

        async def load_content(file_format: str, file_type: str) -> dict[str, Any]:
            model = await load(file_format, file_type)
            if file_type == "notebook" and isinstance(model.get("content"), dict):
                await self._check(loader, loader.hub_rtc_room, model)
            return dict(model)

        loader.load_content = load_content

    async def check_stored(self, loader: Any, model: dict[str, Any]) -> None:
        """Check a notebook the update store gives a room as if its file gave it: the
        store is in the same kernels' reach (where they are not sandboxed).  What may
        not be believed is put back in ``model["content"]``."""
        if isinstance(model.get("content"), dict):
            await self._check(loader, getattr(loader, "hub_rtc_room", None), model)

    def trust_saves(self, contents_manager: Any) -> None:
        """What the server's contents manager writes is authorized: the Authorizer let
        its writer write (a notebook with cells they may not change is never written
        that way), or it is the guarded room's own document.  Only writes that bypass
        it (code in a kernel, another process) are the file speaking for itself.

        A checkpoint restored is such a write too (jupyter_server copies it over the
        file, past ``save``), but the checkpoint is a file in the kernels' reach: it
        is believed only if it is what this server last wrote there when the
        checkpoint was made; otherwise the file is checked as any out-of-band change."""
        save = contents_manager.save
        create_checkpoint = contents_manager.create_checkpoint
        restore_checkpoint = contents_manager.restore_checkpoint

        async def saving(model: dict[str, Any], path: str = "") -> Any:
            notebook = model.get("type") == "notebook" and isinstance(model.get("content"), dict)
            clean = path.strip("/")
            if notebook:  # before: the file watcher may read the new file before save returns
                self._trusted[clean] = model["content"]
            saved = await ensure_async(save(model, path))
            if notebook:
                self._later(self._saved(clean, model["content"]))
            return saved

        async def creating(path: str) -> Any:
            clean = path.strip("/")
            trusted = self._trusted.get(clean)
            made = await ensure_async(create_checkpoint(path))
            if trusted is not None:  # if the file said something else, the restore will not match
                kept = self._checkpoints.setdefault(clean, [])
                kept[:] = [*kept, fingerprint(trusted)][-CHECKPOINTS_KEPT:]
            return made

        async def restoring(checkpoint_id: str, path: str) -> None:
            clean = path.strip("/")
            if not clean.endswith(".ipynb"):
                await ensure_async(restore_checkpoint(checkpoint_id, path))
                return
            # what is restored is known only once it is on disk: loads of this file wait
            self._writing[clean] = done = asyncio.Event()
            believed = False
            try:
                await ensure_async(restore_checkpoint(checkpoint_id, path))
                model = await ensure_async(contents_manager.get(path, content=True, type="notebook"))
                believed = fingerprint(model["content"]) in self._checkpoints.get(clean, ())
                if believed:
                    self._trusted[clean] = model["content"]
            finally:
                done.set()
                if self._writing.get(clean) is done:
                    del self._writing[clean]
            if not believed:
                self.log.warning("hub_rtc: the checkpoint of %s restored is not what this server"
                                 " wrote there (a kernel may have written it, or the server"
                                 " restarted since): the file is checked as an out-of-band change",
                                 clean)
                return
            # The copy keeps the checkpoint's older mtime: an open room's file watcher
            # would miss it, and the room's next save write over it.  Saved again, it is
            # what any trusted save is: loaded by the room, and the new baseline.
            await saving({"type": "notebook", "format": "json", "content": model["content"]}, path)

        contents_manager.save = saving
        contents_manager.create_checkpoint = creating
        contents_manager.restore_checkpoint = restoring

    # -- loading -------------------------------------------------------------------

    async def _check(self, loader: Any, room: Any, model: dict[str, Any]) -> None:
        path = str(loader.path).strip("/")
        ruled = await self._ask(path)  # ServiceUnavailable: the room does not load (fail closed)
        if not ruled.guarded:
            return
        await self._settled(path)
        content: Notebook = model["content"]
        trusted = self._trusted.get(path)
        if trusted is not None and self._agree(trusted, content, ruled):
            # what the server itself last wrote there: authorized already, and the
            # baseline of a rule or runner that came after that write
            self._later(self._saved(path, trusted))
            return
        baselines, known, whole = self._authorized(room, ruled)
        fixed, changed = content, list[str]()
        if whole is not None:
            fixed, changed = restore_run(content, whole)
        elif ruled.runs:
            self.log.log(logging.WARNING if path in self._too_large else logging.INFO,
                         "hub_rtc: no baseline of the whole of %s (none kept yet since someone"
                         " may run code without editing, or above %d bytes): its file is"
                         " believed for unruled cells", path, MAX_NOTEBOOK_BYTES)
        cells, put_back = restore(list(fixed.get("cells") or []), baselines, known)
        if put_back:
            fixed = {**fixed, "cells": cells}
            changed += [cid for cid in put_back if cid not in changed]
        if changed:
            model["content"] = fixed
            self._refused(ruled, path, changed)
            self._later(self._resave(loader, model))
        else:  # what was believed (a cell without a baseline yet) is the baseline now
            self._later(self._saved(path, fixed))

    async def _settled(self, path: str) -> None:
        """Wait for a trusted write of ``path`` under way to say what it wrote."""
        writing = self._writing.get(path)
        if writing is not None:
            try:
                await asyncio.wait_for(writing.wait(), WRITE_SECONDS)
            except TimeoutError:
                self.log.warning("hub_rtc: a restore of %s did not finish; checking the file as"
                                 " it is", path)

    @staticmethod
    def _agree(trusted: Notebook, content: Notebook, ruled: _Ruled) -> bool:
        """``content`` says nothing the file may not say beyond ``trusted``."""
        if snapshot(trusted.get("cells") or [], ruled.ids) != snapshot(content.get("cells") or [],
                                                                        ruled.ids):
            return False
        return not ruled.runs or not restore_run(content, trusted)[1]

    def _authorized(self, room: Any, ruled: _Ruled
                    ) -> tuple[dict[str, Baseline], set[str] | None, Notebook | None]:
        """The authorized state (the open room's, else the service's): of each ruled cell;
        the cell ids the open room has (None: no room open); where the file is a runner's,
        the whole notebook (None: none known)."""
        if getattr(room, "ready", False):
            live = room._document.get()
            now = snapshot(live["cells"], ruled.ids)
            gone: dict[str, Baseline] = {cid: dict(_GONE) for cid in ruled.ids if cid not in now}
            known = {str(c.get("id")) for c in live["cells"]}
            return {**gone, **now}, known, (live if ruled.runs else None)
        kept = {cid: base for cid, base in ruled.kept.items() if cid in ruled.ids}
        return kept, None, ruled.whole

    def _refused(self, ruled: _Ruled, path: str, changed: list[str]) -> None:
        what = ", ".join(cid or "the notebook's metadata" for cid in changed)
        self.log.warning("hub_rtc: %s changed %s of %s out of band, which %s may not; put back",
                         THE_FILE, what, path,
                         "a runner" if ruled.runs else "nobody but those who may change ruled cells")
        assert ruled.session_id is not None
        for cell_id in changed:
            self.tally.add(ruled.session_id, THE_FILE, "refused", ruled.path, cell_id or None)

    async def _resave(self, loader: Any, model: dict[str, Any]) -> None:
        """Write the put-back notebook over what the file said."""
        try:
            await loader.maybe_save_content({"format": "json", "type": "notebook",
                                             "content": model["content"]})
        except Exception:  # the room's next save writes it anyway
            self.log.exception("hub_rtc: saving %s back after an out-of-band change failed",
                               model.get("path"))

    # -- saving --------------------------------------------------------------------

    async def _saved(self, path: str, content: Notebook) -> None:
        """After an authorized write: send the service what changed in what it keeps."""
        path = path.strip("/")
        ruled = self._ruled.get(path)
        if ruled is None or time.monotonic() - ruled.at > RULED_SECONDS:
            ruled = await self._ask(path)
        if not ruled.guarded:
            return
        cells = list(content.get("cells") or [])
        now = snapshot(cells, ruled.ids)
        previous = self._reported.get(path, ruled.kept)
        changed = {cid: b for cid, b in now.items() if previous.get(cid) != b}
        changed.update(deleted(previous, now, ruled.ids))
        notebook: Shape | None = None
        send_notebook = False  # the whole notebook's shape is unchanged: not sent
        if ruled.runs:
            rows, whole = whole_rows(content, ruled.ids)
            if fits(rows, whole):
                changed.update({name: row for name, row in rows.items() if previous.get(name) != row})
                changed.update({name: dict(_GONE) for name in previous
                                if name not in ruled.ids and name not in rows})
                if self._shapes.get(path) != whole:
                    notebook, send_notebook = whole, True
                self._too_large.discard(path)
            elif path not in self._too_large:
                self.log.warning("hub_rtc: %s is above the %d-byte limit of a kept baseline:"
                                 " while its room is closed, its file is believed for unruled"
                                 " cells", path, MAX_NOTEBOOK_BYTES)
                self._too_large.add(path)
                send_notebook = True  # None: the service forgets what it had
        if changed or send_notebook:
            await self._keep(path, changed, notebook, send_notebook)

    def refresh(self, room: Any) -> None:
        """Rules or members may have changed (the service pushed): keep baselines of
        newly ruled cells, or of the whole notebook for a new runner, from the open room
        soon, not only at its next save.  In the background: a change of rights is in
        force before this is done."""
        if not getattr(room, "ready", False):
            return
        path = str(room._file.path).strip("/")
        if time.monotonic() - self._refreshed.get(path, -1.0) < 0.5:
            return  # one push re-checks every socket of the room: one refresh will do
        self._refresh(room, path)

    def _refresh(self, room: Any, path: str) -> None:
        self._refreshed[path] = time.monotonic()
        self._ruled.pop(path, None)
        self._later(self._saved(path, room._document.get()))

    def session_changed(self, session_id: str | None) -> None:
        """The service pushed a change to ``session_id`` (None: anything may have changed):
        refresh the open rooms of its notebooks, once each.  A member may have been made
        one who may run code but not edit, with no socket here to notice it; the whole
        notebook's baseline must then be kept now, from the room, not at its next save
        (there may be none before it closes)."""
        for loader in list(self._loaders):
            room = getattr(loader, "hub_rtc_room", None)
            # a loader outlives its room's clean-up until collected: only rooms still served
            if not getattr(room, "ready", False) or loader.number_of_subscriptions == 0:
                continue
            try:  # never in the way of the push being acknowledged
                path = str(loader.path).strip("/")
                ruled = self._ruled.get(path)
                if session_id is None or (ruled is not None and ruled.session_id == session_id):
                    self._refresh(room, path)
            except Exception:
                self.log.exception("hub_rtc: keeping the baseline of an open notebook failed")

    async def _keep(self, path: str, cells: dict[str, Baseline], notebook: Shape | None = None,
                    send_notebook: bool = False) -> None:
        """Send ``cells`` and, if ``send_notebook``, the whole notebook's shape (None:
        forget the whole notebook's baseline)."""
        if self.client is None:
            return
        try:
            answer = await self.client.keep_baselines(
                path, cells, **({"notebook": notebook} if send_notebook else {}))
        except ServiceUnavailable as e:
            self.log.warning("hub_rtc: baselines of %s not kept yet: %s", path, e)
            self._reported.pop(path, None)  # send everything again at the next save
            self._shapes.pop(path, None)
            return
        reported = self._reported.setdefault(path, {})
        for name, row in cells.items():
            reported[name] = row
            if not row.get("present", True) and name not in self._ids(path):
                del reported[name]  # an unruled cell gone has no row
        if send_notebook:
            self._shapes[path] = notebook
        if answer.get("notebook") == "too_large" and path not in self._too_large:
            self.log.warning("hub_rtc: the service keeps no baseline of the whole of %s (above"
                             " its limit): while its room is closed, its file is believed for"
                             " unruled cells", path)
            self._too_large.add(path)
        ruled = self._ruled.get(path)
        if ruled is not None and ruled.runs and answer.get("file_may") == "write":
            self._ruled.pop(path, None)  # nobody runs code without editing any more: ask again

    def _ids(self, path: str) -> set[str]:
        ruled = self._ruled.get(path)
        return ruled.ids if ruled is not None else set()

    async def _ask(self, path: str) -> _Ruled:
        if self.client is None:
            return _Ruled({})
        ruled = _Ruled(await self.client.baselines(path))
        self._ruled[path] = ruled
        # the service's word is what was kept: a rule made anew starts with nothing
        self._reported[path], self._shapes[path] = ruled.reported()
        return ruled

    def _later(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("hub_rtc: keeping baselines failed", exc_info=task.exception())
