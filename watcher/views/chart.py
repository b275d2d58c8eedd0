"""The date-slip chart of a trial page: key dates and enrollment across versions, as SVG.

Drawn on the server so it reads without JavaScript and needs no library: one column per version,
one line per date (start, primary completion, completion) on a time axis, enrollment as bars on
its own scale below. The series are rebuilt from the newest record and the change log (walking
back one version at a time), so a trial of 100 versions costs one query, not 100 records.
Pure: values in, SVG text out; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from watcher.models import Json, StoredChange

DATE_FIELDS = (
    ("status.startDate", "Start", "#2b6cb0"),
    ("status.primaryCompletionDate", "Primary completion", "#c05621"),
    ("status.completionDate", "Completion", "#2f855a"),
)
ENROLLMENT = "design.enrollmentCount"
WIDTH, TOP, DATES_HEIGHT, BARS_HEIGHT, LEFT, RIGHT = 600, 22, 170, 70, 84, 16


@dataclass(frozen=True, slots=True)
class Point:
    version: int
    values: Mapping[str, Json]


def series(versions: Sequence[int], latest: Mapping[str, Json], changes: Sequence[StoredChange]) -> list[Point]:
    """The values of the chart's fields at each version, oldest first, from the newest version's
    fields and the changes stored with each version (a change at version v turns `new` back to `old`)."""
    fields = [f for f, _, _ in DATE_FIELDS] + [ENROLLMENT]
    by_version: dict[int, list[StoredChange]] = {}
    for item in changes:
        if item.change.field in fields and not item.baseline:
            by_version.setdefault(item.version, []).append(item)
    current = {f: latest.get(f) for f in fields}
    points = []
    for version in sorted(versions, reverse=True):
        points.append(Point(version, dict(current)))
        for item in by_version.get(version, ()):
            current[item.change.field] = item.change.old
    return points[::-1]


def parse_day(value: Json) -> date | None:
    """A registry date (`2027`, `2027-06`, `2027-06-30`) as a day (the first of its month or year)."""
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    try:
        numbers = [int(p) for p in parts[:3]] + [1] * (3 - min(len(parts), 3))
        return date(numbers[0], numbers[1], numbers[2])
    except ValueError:
        return None


def _count(value: Json) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def render_chart(points: Sequence[Point], *, title: str = "Key dates and enrollment by version") -> str:
    """The SVG (an accessible image: `role="img"` with a title), or "" with fewer than one point."""
    if not points:
        return ""
    days = [d for p in points for f, _, _ in DATE_FIELDS if (d := parse_day(p.values.get(f))) is not None]
    counts = [c for p in points if (c := _count(p.values.get(ENROLLMENT))) is not None]
    height = TOP + DATES_HEIGHT + BARS_HEIGHT + 48
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="chart-title">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    step = (WIDTH - LEFT - RIGHT) / max(len(points), 1)
    xs = [LEFT + step * (i + 0.5) for i in range(len(points))]
    out += _date_lines(points, xs, days)
    out += _bars(points, xs, counts, step)
    out += _axis(points, xs, height)
    out.append("</svg>")
    return "\n".join(out)


def _date_lines(points: Sequence[Point], xs: Sequence[float], days: Sequence[date]) -> list[str]:
    if not days:
        return [f'<text x="{LEFT}" y="{TOP + 20}" class="muted">No dates recorded</text>']
    low, high = min(days).toordinal(), max(days).toordinal()
    span = max(high - low, 1)

    def y(day: date) -> float:
        return TOP + DATES_HEIGHT - 10 - (day.toordinal() - low) / span * (DATES_HEIGHT - 20)

    years = range(min(days).year + 1, max(days).year + 1)
    step = max(1, len(years) // 6)
    out = []
    for year in years[::step]:
        at = y(date(year, 1, 1))
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{at + 4:.1f}" class="tick" text-anchor="end">{year}</text>')
    if not years:
        out.append(
            f'<text x="{LEFT - 6}" y="{y(min(days)) + 4:.1f}" class="tick" text-anchor="end">{min(days):%Y-%m}</text>'
        )
    for index, (field, label, colour) in enumerate(DATE_FIELDS):
        marks = [(x, d) for x, p in zip(xs, points, strict=True) if (d := parse_day(p.values.get(field)))]
        if not marks:
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y(d):.1f}" for i, (x, d) in enumerate(marks))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, d in marks:
            out.append(
                f'<circle cx="{x:.1f}" cy="{y(d):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(label)}: {d.isoformat()}</title></circle>"
            )
        legend_x = LEFT + index * 150
        out.append(f'<rect x="{legend_x}" y="4" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 14}" y="13" class="legend">{escape(label)}</text>')
    return out


def _bars(points: Sequence[Point], xs: Sequence[float], counts: Sequence[int], step: float) -> list[str]:
    base = TOP + DATES_HEIGHT + BARS_HEIGHT
    out = [f'<text x="{LEFT - 6}" y="{base - 4}" class="tick" text-anchor="end">enrollment</text>']
    if not counts:
        return out
    top = max(*counts, 1)
    width = max(min(step * 0.6, 28), 2)
    for x, point in zip(xs, points, strict=True):
        count = _count(point.values.get(ENROLLMENT))
        if count is None:
            continue
        h = count / top * (BARS_HEIGHT - 16)
        out.append(
            f'<rect x="{x - width / 2:.1f}" y="{base - h:.1f}" width="{width:.1f}" height="{h:.1f}" class="bar">'
            f"<title>v{point.version}: {count}</title></rect>"
        )
        if len(points) <= 12:
            out.append(f'<text x="{x:.1f}" y="{base - h - 3:.1f}" class="tick" text-anchor="middle">{count}</text>')
    out.append(f'<text x="{LEFT - 6}" y="{base - BARS_HEIGHT + 20:.1f}" class="tick" text-anchor="end">{top}</text>')
    return out


def _axis(points: Sequence[Point], xs: Sequence[float], height: int) -> list[str]:
    every = max(1, len(points) // 12)
    return [
        f'<text x="{x:.1f}" y="{height - 20}" class="tick" text-anchor="middle">v{p.version}</text>'
        for i, (x, p) in enumerate(zip(xs, points, strict=True))
        if i % every == 0 or i == len(points) - 1
    ]
