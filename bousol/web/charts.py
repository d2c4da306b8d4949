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
