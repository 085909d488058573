"""Charts drawn on the server as SVG: readable without colour (every bar labelled, every series
with its own hatch pattern and a legend), printable, and needing no script.

Each function returns the SVG as markup (``markupsafe.Markup``); text is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour and pattern per state / series: the pattern carries the meaning when colour cannot.
STATES = {"ok": ("#2f7d32", "solid"), "warning": ("#b26a00", "dots"), "critical": ("#b3261e", "hatch"),
          "peacetime": ("#2f7d32", "solid"), "emergency": ("#b26a00", "dots"), "wartime": ("#b3261e", "hatch")}
SERIES = [("#1f5fa8", "solid"), ("#b26a00", "dots"), ("#6a3d9a", "hatch"), ("#2f7d32", "cross")]

_DEFS = """<defs>
<pattern id="p-dots" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#fff"/><circle cx="3" cy="3" r="1.6" fill="currentColor"/></pattern>
<pattern id="p-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><rect width="3" height="6" fill="currentColor"/></pattern>
<pattern id="p-cross" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="currentColor" stroke-width="1.2"/></pattern>
</defs>"""


def _fill(colour: str, pattern: str) -> str:
    return f'fill="{colour}"' if pattern == "solid" else f'fill="url(#p-{pattern})" style="color:{colour}" stroke="{colour}"'


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # 0..max
    text: str  # the value as the reader reads it
    kind: str  # a key of STATES
    href: str | None = None


def bars(title: str, items: list[Bar], *, maximum: float = 1.0, mark: float | None = None,
         mark_label: str = "") -> Markup:
    """Horizontal bars, one per item, each labelled with its value and state."""
    width, left, row = 640, 190, 26
    height = 30 + row * max(len(items), 1)
    scale = (width - left - 150) / (maximum or 1)
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{_DEFS}']
    for i, bar in enumerate(items):
        y = 20 + i * row
        colour, pattern = STATES.get(bar.kind, SERIES[0])
        length = max(0.0, min(bar.value, maximum)) * scale
        label = escape(bar.label)
        if bar.href:
            label = Markup(f'<a href="{escape(bar.href)}">{label}</a>')
        out.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="13">{label}</text>'
                   f'<rect x="{left}" y="{y}" width="{length:.1f}" height="18" {_fill(colour, pattern)}/>'
                   f'<text x="{left + length + 6:.1f}" y="{y + 14}" font-size="13">{escape(bar.text)}</text>')
    if mark is not None:
        x = left + mark * scale
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="12" y2="{height - 4}" stroke="#1d2330" stroke-dasharray="4 3"/>'
                   f'<text x="{x + 3:.1f}" y="11" font-size="11">{escape(mark_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def stacked(title: str, columns: list[str], series: dict[str, list[float]], *, unit: str = "") -> Markup:
    """Stacked columns (one per label in ``columns``), a series per key with its own pattern,
    every segment's value written in it when it fits, and a legend."""
    width, height, left, bottom, top = 720, 300, 40, 60, 20
    totals = [sum(values[i] for values in series.values()) for i in range(len(columns))]
    peak = max(totals or [0]) or 1
    step = (width - left - 10) / max(len(columns), 1)
    scale = (height - top - bottom) / peak
    out = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{_DEFS}']
    for i, column in enumerate(columns):
        x, y = left + i * step + 4, height - bottom
        for s, (name, values) in enumerate(series.items()):
            colour, pattern = SERIES[s % len(SERIES)]
            h = values[i] * scale
            if h <= 0:
                continue
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 8:.1f}" height="{h:.1f}" {_fill(colour, pattern)}>'
                       f'<title>{escape(name)} {escape(column)}: {values[i]:g}</title></rect>')
            if h >= 14:
                out.append(f'<text x="{x + (step - 8) / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" '
                           f'font-size="11" paint-order="stroke" stroke="#fff" stroke-width="3">{values[i]:g}</text>')
        out.append(f'<text x="{x + (step - 8) / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                   f'font-size="11">{escape(column)}</text>')
        if totals[i]:
            out.append(f'<text x="{x + (step - 8) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="11" '
                       f'font-weight="600">{totals[i]:g}</text>')
    for s, name in enumerate(series):
        colour, pattern = SERIES[s % len(SERIES)]
        x = left + s * 150
        out.append(f'<rect x="{x}" y="{height - 24}" width="14" height="14" {_fill(colour, pattern)}/>'
                   f'<text x="{x + 20}" y="{height - 12}" font-size="12">{escape(name)}</text>')
    if unit:
        out.append(f'<text x="4" y="14" font-size="11">{escape(unit)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True)
class Place:
    code: str
    name: str
    latitude: float
    longitude: float
    kind: str  # a key of STATES: the region's effective level
    label: str  # the level as the reader reads it


def region_map(title: str, places: list[Place], legend: list[tuple[str, str]] = ()) -> Markup:
    """Warehouses placed by their coordinates (an equirectangular projection of their bounding box,
    no tiles), each a marker patterned and labelled by its region's effective level; ``legend``:
    (level, its name) per marker kind."""
    width, height, pad, right = 720, 480, 40, 170
    if not places:
        return Markup(f'<svg class="chart" role="img" viewBox="0 0 {width} 60" xmlns="http://www.w3.org/2000/svg">'
                      f'<title>{escape(title)}</title></svg>')
    lats = [p.latitude for p in places]
    lons = [p.longitude for p in places]
    span_lat, span_lon = (max(lats) - min(lats)) or 1, (max(lons) - min(lons)) or 1
    scale = min((width - pad - right) / span_lon, (height - 2 * pad - 20) / span_lat)
    out = [f'<svg class="chart map" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{_DEFS}'
           f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" fill="#f4f7fb" stroke="#d5d9e0"/>']
    for p in places:
        x = pad + (p.longitude - min(lons)) * scale
        y = height - pad - 20 - (p.latitude - min(lats)) * scale
        colour, pattern = STATES.get(p.kind, SERIES[0])
        out.append(f'<g class="place" data-warehouse="{escape(p.code)}" data-level="{escape(p.kind)}">'
                   f'<title>{escape(p.code)} · {escape(p.name)} · {escape(p.label)}</title>'
                   f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" {_fill(colour, pattern)} stroke-width="2"/>'
                   f'<text x="{x + 12:.1f}" y="{y + 4:.1f}" font-size="11" paint-order="stroke" stroke="#fff" '
                   f'stroke-width="3">{escape(p.code)} ({escape(p.label)})</text></g>')
    for i, (kind, label) in enumerate(legend):
        colour, pattern = STATES.get(kind, SERIES[0])
        out.append(f'<circle cx="{pad + i * 130}" cy="{height - 16}" r="7" {_fill(colour, pattern)} stroke-width="2"/>'
                   f'<text x="{pad + i * 130 + 12}" y="{height - 12}" font-size="12">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True)
class Point:
    at: str  # the moment as the reader reads it
    value: float


def line(title: str, points: list[Point], *, band: tuple[float | None, float | None] = (None, None),
         band_label: str = "", unit: str = "") -> Markup:
    """A series over time as a line, oldest at the left, its allowed band (``band``: min, max, either
    open) drawn as a labelled, hatched strip with dashed edges, and every point outside the band marked
    with a cross, so an excursion reads without colour."""
    width, height, left, right, top, bottom = 720, 280, 56, 16, 20, 40
    low, high = band
    values = [p.value for p in points] + [v for v in band if v is not None]
    out = [f'<svg class="chart line" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{_DEFS}']
    if not points:
        out.append("</svg>")
        return Markup("".join(out))
    floor, peak = min(values), max(values)
    pad = (peak - floor) * 0.08 or 1.0
    floor, peak = floor - pad, peak + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (len(points) - 1) if len(points) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (peak - v) / (peak - floor)

    if low is not None or high is not None:
        y_top, y_bottom = y(high if high is not None else peak), y(low if low is not None else floor)
        colour, pattern = STATES["ok"][0], "dots"
        out.append(f'<rect class="band" x="{left}" y="{y_top:.1f}" width="{plot_w}" height="{y_bottom - y_top:.1f}" '
                   f'{_fill(colour, pattern)} stroke="none" opacity="0.35"><title>{escape(band_label)}</title></rect>')
        for edge in (low, high):
            if edge is not None:
                out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(edge):.1f}" y2="{y(edge):.1f}" '
                           f'stroke="{colour}" stroke-dasharray="5 3"/>'
                           f'<text x="{width - right - 4}" y="{y(edge) - 3:.1f}" text-anchor="end" font-size="11">'
                           f'{edge:g} {escape(unit)}</text>')
    for v in (floor + pad, peak - pad):
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:g}</text>')
    path = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points))
    out.append(f'<polyline points="{path}" fill="none" stroke="{SERIES[0][0]}" stroke-width="1.6"/>')
    for i, p in enumerate(points):
        if (low is not None and p.value < low) or (high is not None and p.value > high):
            cx, cy = x(i), y(p.value)
            out.append(f'<path class="outside" d="M{cx - 3:.1f} {cy - 3:.1f}L{cx + 3:.1f} {cy + 3:.1f}'
                       f'M{cx + 3:.1f} {cy - 3:.1f}L{cx - 3:.1f} {cy + 3:.1f}" stroke="{STATES["critical"][0]}" '
                       f'stroke-width="1.4"/>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="#1d2330"/>'
               f'<text x="{left}" y="{height - bottom + 16}" font-size="11">{escape(points[0].at)}</text>'
               f'<text x="{width - right}" y="{height - bottom + 16}" text-anchor="end" font-size="11">'
               f'{escape(points[-1].at)}</text>')
    if unit:
        out.append(f'<text x="4" y="14" font-size="11">{escape(unit)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
