"""Reading a Yjs v1 update before pycrdt does, and rewriting one as bare clock ranges.

pycrdt (yrs) sizes its buffers from the counts an update declares: a 14-byte update
that declares 2**32 values makes it ask the allocator for about 100 GB before it
notices the bytes are not there.  The kernel refuses such a request under the default
overcommit policy; under others it is a denial of service.  :func:`scan` walks the
whole update first and rejects any count or length that cannot fit in the bytes that
remain, any nesting deeper than a bound, and any content kind the guard does not know,
so pycrdt only ever decodes updates whose every declared size is backed by bytes.

The walk also reports what the guard needs to judge an update before integrating it:
which content kinds it carries (formatting, embeds...) and the clock ranges of its
structs, from which :func:`strip` writes the same update with no content at all.

Layout (lib0 encoding, as Yjs and yrs write it)::

    update      = clients:varuint { structs:varuint client:varuint clock:varuint struct* }
                  delete_set
    struct      = info:u8 ...  (info & 31: 0 GC, 10 skip, else an item's content kind)
    item        = [origin:id if info&128] [right:id if info&64]
                  [parent (named root or id) [key:varstring if info&32] if neither origin]
                  content
    delete_set  = clients:varuint { client:varuint ranges:varuint (clock len)* }
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .frames import FrameError, encode_var_bytes, encode_var_uint

__all__ = ["ContentKind", "Scan", "ScanError", "Struct", "scan", "splits", "strip", "wide_ids"]

#: yrs keeps clocks and lengths in 32 bits
_MAX_U32 = 0xFFFFFFFF
_GC, _SKIP = 0, 10


class ContentKind:
    """Item content kinds (the low five bits of a struct's info byte)."""

    DELETED, JSON, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC = range(1, 10)


#: shared types by type ref: array, map, text, xml element, fragment, hook, xml text
_TYPE_REFS = range(7)
_NAMED_TYPE_REFS = (3, 5)  # xml element and hook carry a name


class ScanError(FrameError):
    """An update that must not reach pycrdt: malformed, or beyond a limit."""

    def __init__(self, reason: str, *, limit: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: True when the update is well-formed but exceeds a limit (close code 4413)
        self.limit = limit


ID = tuple[int, int]


@dataclass(slots=True)
class Struct:
    """Where one struct of an update sits, without its content."""

    length: int
    #: 0 GC, 10 skip, else the item's content kind
    kind: int
    origin: ID | None = None
    right: ID | None = None
    #: a root's name, or the id of the item holding the parent type (no origins only)
    parent: str | ID | None = None
    #: the map key it names (no origins only: a key new to its sender)
    key: str | None = None
    #: where it is in the update: ``update[start:end]``
    start: int = 0
    end: int = 0
    #: a string's characters beyond the BMP: the UTF-16 offset of each one's first unit
    wide: tuple[int, ...] = ()


@dataclass(slots=True)
class Scan:
    """What an update holds, read without integrating it."""

    #: content kinds of its items
    kinds: set[int] = field(default_factory=set)
    #: per client, in order: (client, first clock, its structs)
    structs: list[tuple[int, int, list[Struct]]] = field(default_factory=list)
    #: where the delete set starts
    delete_set_at: int = 0
    #: its items (not GC or skip); an already-deleted one still carries its map key
    items: int = 0
    #: the id of the first UTF-16 unit of every character beyond the BMP it inserts
    #: (an emoji is two clock units; nothing may be placed or cut between them)
    highs: list[ID] = field(default_factory=list)
    #: its delete set: (client, first clock, length)
    deletes: list[tuple[int, int, int]] = field(default_factory=list)


class _Reader:
    __slots__ = ("data", "end", "pos", "max_depth")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.end = len(data)
        self.pos = 0
        self.max_depth = max_depth

    def uint(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        if pos < end and data[pos] < 0x80:  # most numbers in an update fit one byte
            self.pos = pos + 1
            return data[pos]
        value = shift = 0
        while pos < end:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return value
            shift += 7
            if shift > 63:
                raise ScanError("varuint too long")
        raise ScanError("truncated varuint")

    def count(self, per_entry: int = 1) -> int:
        """A declared number of entries, each at least ``per_entry`` bytes long."""
        value = self.uint()
        if value * per_entry > self.end - self.pos:
            raise ScanError(f"declared count {value} exceeds the update")
        return value

    def skip(self, length: int) -> None:
        if length > self.end - self.pos:
            raise ScanError(f"declared length {length} exceeds the update")
        self.pos += length

    def string(self) -> str:
        length = self.uint()
        start = self.pos
        self.skip(length)
        try:
            return self.data[start : self.pos].decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScanError("string is not UTF-8") from e

    def skip_string(self) -> None:
        self.skip(self.uint())

    def any(self, depth: int) -> None:
        """One lib0 ``Any`` value; ``depth`` counts the containers around it."""
        if self.pos >= self.end:
            raise ScanError("truncated value")
        tag = self.data[self.pos]
        self.pos += 1
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if tag == 125:  # varint
            self.uint()
        elif tag == 124:  # float32
            self.skip(4)
        elif tag in (123, 122):  # float64, bigint
            self.skip(8)
        elif tag in (119, 116):  # string, bytes
            self.skip_string()
        elif tag in (118, 117):
            if depth >= self.max_depth:
                raise ScanError(f"values nested deeper than {self.max_depth}", limit=True)
            if tag == 118:  # object: (key, value) pairs
                for _ in range(self.count(2)):
                    self.skip_string()
                    self.any(depth + 1)
            else:  # array
                for _ in range(self.count()):
                    self.any(depth + 1)
        else:
            raise ScanError(f"unknown value tag {tag}")


def scan(update: bytes, *, max_depth: int = 32) -> Scan:
    """Walk ``update`` whole; raise :class:`ScanError` unless pycrdt may decode it."""
    reader = _Reader(update, max_depth)
    result = Scan()
    for _ in range(reader.count(3)):
        n_structs = reader.count()
        client = reader.uint()
        clock = start = reader.uint()
        structs: list[Struct] = []
        for _ in range(n_structs):
            struct = _struct(reader, result)
            result.highs += [(client, clock + offset) for offset in struct.wide]
            clock += struct.length
            if clock > _MAX_U32:
                raise ScanError("clock beyond 32 bits")
            structs.append(struct)
        result.structs.append((client, start, structs))
    result.delete_set_at = reader.pos
    for _ in range(reader.count(2)):
        client = reader.uint()
        for _ in range(reader.count(2)):
            clock, length = reader.uint(), reader.uint()
            if clock + length > _MAX_U32:
                raise ScanError("deleted range beyond 32 bits")
            result.deletes.append((client, clock, length))
    if reader.pos != reader.end:
        raise ScanError("trailing bytes after the update")
    return result


def _struct(reader: _Reader, result: Scan) -> Struct:
    start = reader.pos
    struct = _struct_at(reader, result)
    struct.start, struct.end = start, reader.pos
    return struct


def _struct_at(reader: _Reader, result: Scan) -> Struct:
    if reader.pos >= reader.end:
        raise ScanError("truncated struct")
    info = reader.data[reader.pos]
    reader.pos += 1
    kind = info & 0x1F
    if kind in (_GC, _SKIP):
        return Struct(reader.uint(), kind)
    struct = Struct(0, kind)
    if info & 0x80:
        struct.origin = (reader.uint(), reader.uint())
    if info & 0x40:
        struct.right = (reader.uint(), reader.uint())
    if not info & 0xC0:
        struct.parent = reader.string() if reader.uint() else (reader.uint(), reader.uint())
        if info & 0x20:
            struct.key = reader.string()
    result.kinds.add(kind)
    result.items += 1
    if kind == ContentKind.STRING:
        text = reader.string()
        struct.length = len(text.encode("utf-16-le")) // 2  # clocks count UTF-16 units
        if struct.length != len(text):
            struct.wide = _wide(text)
    else:
        struct.length = _content(reader, kind)
    return struct


def _wide(text: str) -> tuple[int, ...]:
    """The UTF-16 offset of the first unit of each character of ``text`` beyond the BMP."""
    out, offset = [], 0
    for char in text:
        if ord(char) > 0xFFFF:
            out.append(offset)
            offset += 2
        else:
            offset += 1
    return tuple(out)


def _content(reader: _Reader, kind: int) -> int:
    """Read an item's content (not a string's); its clock length."""
    if kind == ContentKind.DELETED:
        return reader.uint()
    if kind == ContentKind.ANY:
        count = reader.count()
        for _ in range(count):
            reader.any(1)
        return count
    if kind == ContentKind.TYPE:
        ref = reader.uint()
        if ref not in _TYPE_REFS:
            raise ScanError(f"unsupported shared type {ref}")
        if ref in _NAMED_TYPE_REFS:
            reader.skip_string()
        return 1
    if kind == ContentKind.JSON:
        count = reader.count()
        for _ in range(count):
            reader.skip_string()
        return count
    if kind in (ContentKind.BINARY, ContentKind.EMBED):
        reader.skip_string()
        return 1
    if kind == ContentKind.FORMAT:
        reader.skip_string()
        reader.skip_string()
        return 1
    if kind == ContentKind.DOC:
        reader.skip_string()
        reader.any(1)
        return 1
    raise ScanError(f"unsupported content kind {kind}")


#: a 4-byte UTF-8 sequence (a character beyond the BMP), or bytes that look like one
_FOUR_BYTES = re.compile(rb"[\xf0-\xf4][\x80-\xbf]{3}")
#: how deep the room's own updates may nest for :func:`wide_ids` to read them
_ROOM_DEPTH = 256


def wide_ids(update: bytes) -> list[ID]:
    """:attr:`Scan.highs` of an update the room already holds (none if it does not
    scan); one with no 4-byte UTF-8 sequence holds no such character and is not read."""
    if not _FOUR_BYTES.search(update):
        return []
    try:
        return scan(update, max_depth=_ROOM_DEPTH).highs
    except ScanError:
        return []


def splits(scanned: Scan, highs: Collection[ID]) -> str:
    """Why ``scanned`` would cut a character in two ("" if it does not).

    A clock counts UTF-16 units, so a character beyond the BMP (an emoji) is two
    ids, its first in ``highs`` (the document's) or ``scanned.highs`` (its own).
    An item placed after the first or before the second, or a deletion that
    starts or ends between them, names half a character.  No editor does that;
    yrs and Yjs then disagree about the text (yrs deletes a neighbour, Yjs
    writes U+FFFD), so replicas, the file and the store would differ for good.
    """
    if not highs and not scanned.highs:
        return ""
    known = set(highs) | set(scanned.highs) if scanned.highs else highs
    for _, _, structs in scanned.structs:
        for struct in structs:
            right = struct.right
            if struct.origin in known or (right is not None and (right[0], right[1] - 1) in known):
                return "an item placed inside a character"
    for client, clock, length in scanned.deletes:
        if (client, clock - 1) in known or (client, clock + length - 1) in known:
            return "a deletion that cuts a character in two"
    return ""


def strip(update: bytes, scanned: Scan, roots: Collection[str], known: Callable[[str], bool]) -> bytes:
    """``update`` with no content at all: what a reader sends, made harmless.

    Every item becomes an already-deleted item of the same length where it would
    have been (same origins, same key), so the mirror can still place reverts after
    it, and Yjs orders it against concurrent entries as the sender's replica does.
    One that would name something the document does not hold yet (a map key for
    which ``known`` is false, a root not in ``roots``) becomes a garbage-collected
    range instead: nothing to order against exists, so nothing diverges.  The
    clocks advance exactly as ``update`` would, and the delete set is kept, so the
    sender's replica deletes its items when the result comes back.  Nothing of the
    content remains: no text, values, keys, root names, formatting or embeds.
    Yjs integrates anything later attached to a collected range as garbage too.
    """
    out = bytearray(encode_var_uint(len(scanned.structs)))
    for client, start, structs in scanned.structs:
        out += encode_var_uint(len(structs)) + encode_var_uint(client) + encode_var_uint(start)
        for struct in structs:
            out += _stripped(struct, roots, known)
    out += update[scanned.delete_set_at :]
    return bytes(out)


def strip_outside(update: bytes, scanned: Scan, keep: str, roots: Collection[str],
                  known: Callable[[str], bool]) -> bytes:
    """``update`` with what it holds outside the root ``keep`` stripped as :func:`strip`
    strips everything: items of other roots and new roots, and every item placed in
    or next to one of those.  What is below ``keep`` stays as it was sent.

    For a runner, who may write results into the cells and nothing else: their items
    outside the cells would be reverted anyway, but a reverted map entry leaves its
    key's name in the document; stripped, not even that reaches it.  An item placed
    by its neighbours alone (no parent written) next to an item that the document
    already holds stays, and is judged and reverted as before: it names no key.
    """
    outside = _outside(scanned, keep)
    if not outside:
        return update
    out = bytearray(encode_var_uint(len(scanned.structs)))
    for client, start, structs in scanned.structs:
        out += encode_var_uint(len(structs)) + encode_var_uint(client) + encode_var_uint(start)
        clock = start
        for struct in structs:
            if (client, clock) in outside:
                out += _stripped(struct, roots, known)
            else:
                out += update[struct.start:struct.end]
            clock += struct.length
    out += update[scanned.delete_set_at:]
    return bytes(out)


def _outside(scanned: Scan, keep: str) -> set[ID]:
    """The first ids of the items of ``scanned`` that are not below the root ``keep``,
    to a fixed point: an item in or next to such an item is outside too."""
    items = [(client, clock, struct) for client, clock, struct in _placed(scanned)
             if struct.kind not in (_GC, _SKIP)]
    if not any(isinstance(s.parent, str) and s.parent != keep for _, _, s in items):
        return set()  # (the common case, results written into cells: one pass)
    ranges: list[tuple[int, int, int]] = []
    outside: set[ID] = set()

    def within(item: ID | None) -> bool:
        return item is not None and any(c == item[0] and s <= item[1] < e for c, s, e in ranges)

    grown = True
    while grown:
        grown = False
        for client, clock, struct in items:
            if (client, clock) in outside:
                continue
            parent = struct.parent
            if ((isinstance(parent, str) and parent != keep)
                    or (isinstance(parent, tuple) and within(parent))
                    or within(struct.origin) or within(struct.right)):
                outside.add((client, clock))
                ranges.append((client, clock, clock + struct.length))
                grown = True
    return outside


def _placed(scanned: Scan) -> list[tuple[int, int, Struct]]:
    out = []
    for client, start, structs in scanned.structs:
        clock = start
        for struct in structs:
            out.append((client, clock, struct))
            clock += struct.length
    return out


def _stripped(struct: Struct, roots: Collection[str], known: Callable[[str], bool]) -> bytes:
    length = encode_var_uint(struct.length)
    if struct.kind in (_GC, _SKIP):
        return bytes([struct.kind]) + length
    if struct.origin is None and struct.right is None:
        parent, key = struct.parent, struct.key
        if (parent is None or (key is not None and not known(key))
                or (isinstance(parent, str) and parent not in roots)):
            return bytes([_GC]) + length
        out = bytes([ContentKind.DELETED | (0x20 if key is not None else 0)])
        if isinstance(parent, str):
            out += encode_var_uint(1) + encode_var_bytes(parent.encode("utf-8"))
        else:
            out += encode_var_uint(0) + _id(parent)
        if key is not None:
            out += encode_var_bytes(key.encode("utf-8"))
        return out + length
    info = ContentKind.DELETED | (0x80 if struct.origin else 0) | (0x40 if struct.right else 0)
    out = bytes([info])
    if struct.origin:
        out += _id(struct.origin)
    if struct.right:
        out += _id(struct.right)
    return out + length


def _id(item: ID) -> bytes:
    return encode_var_uint(item[0]) + encode_var_uint(item[1])
