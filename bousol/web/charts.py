"""Small line charts drawn as SVG on the server: no script to load, nothing fetched,
and the page keeps a data table beside each chart for screen readers."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]
    css_class: str  # colour from the stylesheet (CSP: no inline styles)


def line_chart(title: str, x_labels: list[str], series: list[Series], *,
               width: int = 720, height: int = 240, chart_id: str = "chart") -> Markup:
    pad_left, pad_bottom, pad_top, pad_right = 70, 28, 12, 12
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    top = max([1, *(v for s in series for v in s.values)])
    count = max(1, len(x_labels) - 1)

    def point(i: int, value: int) -> str:
        x = pad_left + plot_w * i / count
        y = pad_top + plot_h * (1 - value / top)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{pad_left}" y1="{pad_top + plot_h}" '
        f'x2="{pad_left + plot_w}" y2="{pad_top + plot_h}"/>',
        f'<line class="axis" x1="{pad_left}" y1="{pad_top}" x2="{pad_left}" '
        f'y2="{pad_top + plot_h}"/>',
        f'<text class="tick" x="{pad_left - 6}" y="{pad_top + 10}" text-anchor="end">'
        f"{top // 100:,}</text>".replace(",", "\u202f"),
        f'<text class="tick" x="{pad_left - 6}" y="{pad_top + plot_h}" text-anchor="end">0</text>',
    ]
    if x_labels:
        parts.append(f'<text class="tick" x="{pad_left}" y="{height - 6}">'
                     f"{escape(x_labels[0])}</text>")
        parts.append(f'<text class="tick" x="{pad_left + plot_w}" y="{height - 6}" '
                     f'text-anchor="end">{escape(x_labels[-1])}</text>')
    for s in series:
        points = " ".join(point(i, v) for i, v in enumerate(s.values))
        if len(s.values) == 1:
            x, y = point(0, s.values[0]).split(",")
            parts.append(f'<circle class="{s.css_class}" cx="{x}" cy="{y}" r="4"/>')
        else:
            parts.append(f'<polyline class="{s.css_class}" points="{points}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - texts escaped above; the rest is numbers


# Fills for the bar chart, given as SVG presentation attributes (the CSP forbids inline
# styles, not these); the same colours as the legend's keys in the stylesheet.
BAR_FILLS = {"series-bsol": "#0b5e63", "series-eur": "#8a4b00"}


def bar_chart(title: str, x_labels: list[str], series: list[Series], *,
              width: int = 720, height: int = 260, chart_id: str = "bars") -> Markup:
    """Grouped bars, one group per label (a week, a month), one bar per series."""
    pad_left, pad_bottom, pad_top, pad_right = 70, 40, 12, 12
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    top = max([1, *(v for s in series for v in s.values)])
    groups = max(1, len(x_labels))
    group_w = plot_w / groups
    bar_w = group_w * 0.8 / max(1, len(series))
    base = pad_top + plot_h
    parts = [
        f'<svg class="chart bar-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<line class="axis" stroke="#4a4a4a" x1="{pad_left}" y1="{base}" '
        f'x2="{pad_left + plot_w}" y2="{base}"/>',
        f'<line class="axis" stroke="#4a4a4a" x1="{pad_left}" y1="{pad_top}" x2="{pad_left}" '
        f'y2="{base}"/>',
        f'<text class="tick" x="{pad_left - 6}" y="{pad_top + 10}" text-anchor="end">'
        f"{top // 100:,}</text>".replace(",", "\u202f"),
        f'<text class="tick" x="{pad_left - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for g in range(len(x_labels)):
        x0 = pad_left + g * group_w + group_w * 0.1
        for k, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else 0
            h = plot_h * value / top
            fill = BAR_FILLS.get(s.css_class, "#4a4a4a")
            parts.append(f'<rect class="bar {s.css_class}" fill="{fill}" '
                         f'x="{x0 + k * bar_w:.1f}" y="{base - h:.1f}" '
                         f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}"/>')
    # Every label when they fit, else the first and the last.
    shown = set(range(groups)) if groups <= 8 else {0, groups - 1}
    for g, label in enumerate(x_labels):
        if g not in shown:
            continue
        x = pad_left + g * group_w + group_w / 2
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 14}" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - texts escaped above; the rest is numbers
