"""Edits and executions per member over time: one row of bars per member."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

#: bucket sizes, in minutes, from which one is picked so a chart has <= MAX_BUCKETS bars
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440, 10080)
MAX_BUCKETS = 48
#: a chart spans at least this long, so a few minutes of work are bars, not one block
MIN_SPAN = timedelta(minutes=30)
KINDS = ("edit", "execute")

# geometry, in SVG user units
WIDTH, LABEL_W, TOTAL_W, ROW_H, AXIS_H = 760, 120, 110, 46, 28
PLOT_W = WIDTH - LABEL_W - TOTAL_W


@dataclass
class Bucketed:
    """Counts per member, kind and bucket; what the chart and its table show."""

    start: datetime
    step: timedelta
    buckets: int
    counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def bucket_start(self, i: int) -> datetime:
        return self.start + i * self.step

    def peak(self) -> int:
        return max((n for kinds in self.counts.values() for row in kinds.values() for n in row),
                   default=0)


def utcnow() -> datetime:
    """The chart's "now" (module level, so tests can travel in time by patching it)."""
    return datetime.now(UTC)


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _step(span: timedelta) -> timedelta:
    """The smallest bucket size that draws ``span`` in at most MAX_BUCKETS bars."""
    minutes = span.total_seconds() / 60
    return timedelta(minutes=next((s for s in STEPS if minutes / s <= MAX_BUCKETS), STEPS[-1]))


def _frame(times: list[datetime], now: datetime) -> tuple[datetime, timedelta, int]:
    """Start, bucket size and number of buckets of an axis that ends at ``now``.

    The axis ends now, not after the last event, so the right edge means "now"
    and the gap since the last bar reads as the quiet time it is.  Padding to
    MIN_SPAN and rounding up to whole buckets both go into the past, never the
    future.  The end is the close of the current minute, so buckets start on
    whole minutes, their labels read "10:42", and this minute's events are in
    a bucket of their own.  A clock a little ahead of ours (an event after
    ``now``) moves the end out to that event rather than dropping it.
    """
    end = max(now, max(times)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    span = max(end - min(times), MIN_SPAN)
    step = _step(span)
    buckets = max(1, -(-span // step))  # whole buckets, rounded up
    return end - buckets * step, step, buckets


def bucket(events: list[dict[str, Any]], members: list[str] | None = None,
           now: datetime | None = None) -> Bucketed | None:
    """Group activity events (the API's form) into time buckets up to ``now`` (default:
    the current time); None if nothing to draw."""
    wanted = [e for e in events if e["kind"] in KINDS]
    if not wanted:
        return None
    times = [_when(e["ts"]) for e in wanted]
    start, step, buckets = _frame(times, now or utcnow())
    people = sorted(set(members or []) | {e["user"] for e in wanted})
    out = Bucketed(start, step, buckets, {p: {k: [0] * buckets for k in KINDS} for p in people})
    for event, when in zip(wanted, times, strict=True):
        index = (when - start) // step  # exact, and within the axis (see _frame)
        out.counts[event["user"]][event["kind"]][index] += int(event["count"])
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _label(moment: datetime) -> str:
    return moment.strftime("%H:%M") if moment.second == 0 else moment.isoformat()


def _bars(data: Bucketed, member: str, top: float, peak: int) -> list[str]:
    """Edits rise from the row's middle line (solid); executions hang below it (hatched)."""
    half = (ROW_H - 10) / 2
    mid = top + 5 + half
    width = PLOT_W / data.buckets
    out = []
    for kind, noun, sign, css in (("edit", "edit", -1, "bar-edit"), ("execute", "run", 1, "bar-exec")):
        for i, n in enumerate(data.counts[member][kind]):
            if not n:
                continue
            h = max(1.5, half * n / peak)
            x = LABEL_W + i * width + 0.5
            y = mid - h if sign < 0 else mid
            tip = f"{member}: {_count(n, noun)}, "
            moment = data.bucket_start(i)
            out.append(f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{max(width - 1, 1):.1f}"'
                       f' height="{h:.1f}"><title{_moment(moment, time_only=True, label=tip)}>'
                       f'{escape(tip + _label(moment))} UTC</title></rect>')
    out.append(f'<line class="baseline" x1="{LABEL_W}" x2="{LABEL_W + PLOT_W}"'
               f' y1="{mid:.1f}" y2="{mid:.1f}"/>')
    return out


def _row(data: Bucketed, member: str, index: int, peak: int) -> list[str]:
    top = index * ROW_H
    edits = sum(data.counts[member]["edit"])
    runs = sum(data.counts[member]["execute"])
    return [
        f'<g class="member" data-member={quoteattr(member)}>',
        f'<text class="name" x="{LABEL_W - 8}" y="{top + ROW_H / 2 + 4:.1f}" text-anchor="end">'
        f'{escape(member[:18])}</text>',
        *_bars(data, member, top, peak),
        f'<text class="total" x="{LABEL_W + PLOT_W + 8}" y="{top + ROW_H / 2 + 4:.1f}">'
        f'{_count(edits, "edit")} · {_count(runs, "run")}</text>',
        "</g>",
    ]


def _moment(moment: datetime, *, time_only: bool = False, label: str = "") -> str:
    """Attributes that let the page's script show ``moment`` in the reader's time zone
    (static/times.js); the element's own text stays the UTC fallback."""
    attrs = f" data-datetime={quoteattr(moment.isoformat())}"
    if label:
        attrs += f" data-label={quoteattr(label)}"
    return attrs + (" data-time-only" if time_only else "")


def _axis(data: Bucketed, top: float) -> list[str]:
    end = data.bucket_start(data.buckets)  # the close of the minute the chart was drawn in
    return [
        f'<line class="axis" x1="{LABEL_W}" x2="{LABEL_W + PLOT_W}" y1="{top}" y2="{top}"/>',
        f'<text class="tick" x="{LABEL_W}" y="{top + 16}"{_moment(data.start)}>'
        f'{escape(data.start.strftime("%Y-%m-%d %H:%M"))} UTC</text>',
        f'<text class="tick" x="{LABEL_W + PLOT_W}" y="{top + 16}" text-anchor="end"'
        f'{_moment(end, time_only=True)}>{escape(end.strftime("%H:%M"))} UTC</text>',
    ]


def _legend(top: float) -> list[str]:
    x = LABEL_W
    return [
        f'<g class="legend" transform="translate({x},{top})">',
        '<rect class="bar-edit" x="0" y="0" width="14" height="10"/>',
        '<text x="20" y="9">edits (above the line)</text>',
        '<rect class="bar-exec" x="190" y="0" width="14" height="10"/>',
        '<text x="210" y="9">code runs (below the line, hatched)</text>',
        "</g>",
    ]


def timeline_svg(data: Bucketed, title: str) -> str:
    """The chart as an SVG document fragment; ``title`` is escaped."""
    peak = max(1, data.peak())
    members = list(data.counts)
    height = len(members) * ROW_H + AXIS_H + 22
    parts = [
        f'<svg class="rtc-chart" xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}"'
        f' width="100%" aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">Edits and code runs per member, in buckets of '
        f'{int(data.step.total_seconds() // 60)} minutes; the table below has the same numbers.</desc>',
        '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="4" class="hatch"/></pattern></defs>',
    ]
    for i, member in enumerate(members):
        parts += _row(data, member, i, peak)
    parts += _axis(data, len(members) * ROW_H + 2)
    parts += _legend(len(members) * ROW_H + AXIS_H)
    parts.append("</svg>")
    return "\n".join(parts)
