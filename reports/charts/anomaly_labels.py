"""Anomaly rings on a time chart: words for the largest few where they overlap nothing, a key for the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from reports.charts import theme

# More labels than this turn into a pile of repeated words; the rest keep their ring without text.
MAX_LABELLED_ANOMALIES = 3
RING_SIZE = 11.0
# Where a label may sit relative to its point, in points (dx, dy) with its horizontal alignment,
# nearest first; the point's own side of the plot decides whether above or below is tried first.
_HorizontalAlignment = Literal["left", "center", "right"]
_SIDEWAYS: tuple[tuple[int, _HorizontalAlignment], ...] = ((0, "center"), (1, "left"), (-1, "right"))
_LABEL_OFFSETS: tuple[tuple[int, int, _HorizontalAlignment], ...] = tuple(
    (sign * (6 + dy // 4), dy, align) for dy in (22, 44, 66, 88, 110) for sign, align in _SIDEWAYS
)
# Room kept around a label beyond its drawn box (pixels at 150 dpi); browsers may set the SVG's text
# in a slightly different font than the one measured here.
_LABEL_GAP_PX = 4.0
_KEY_GAP_PX = 24.0
_LABEL_STYLE: dict[str, Any] = {
    "fontsize": theme.ANNOTATION_PT,
    "color": theme.ANOMALY_COLOUR,
    "fontweight": "bold",
}
_FALLBACK_KEY = "unusual point"


@dataclass(frozen=True)
class OddPoint:
    """An anomaly in data coordinates, with the words that explain it."""

    x: float
    y: float
    label: str


def mark_anomalies(
    ax: Axes, points: Sequence[OddPoint], *, targets: Sequence[Text], data: np.ndarray
) -> None:
    """Rings every point; gives words to the first few (pass the largest first) where they fit.

    targets are the target-line labels already drawn, data the plotted (x, y) points in data coordinates;
    labels keep clear of both where they can. When a ring is left without words, a key under the chart
    says what a ring means.
    """
    ax.plot(
        [p.x for p in points],
        [p.y for p in points],
        linestyle="none",
        marker="o",
        markersize=RING_SIZE,
        markerfacecolor="none",
        markeredgecolor=theme.ANOMALY_COLOUR,
        markeredgewidth=2.2,
        zorder=5,
    )
    figure = ax.get_figure(root=True)
    assert isinstance(figure, Figure)
    renderer = measuring_renderer(figure)
    labelled = _label_the_first(ax, points, targets, data, renderer)
    if labelled < len(points):
        labels = {p.label for p in points}
        _draw_ring_key(figure, labels.pop() if len(labels) == 1 else _FALLBACK_KEY, renderer)


@dataclass
class _TakenSpace:
    """Display boxes already in use around anomaly labels: rings, words (and target labels), leader lines."""

    rings: list[Bbox]
    words: list[Bbox]
    leaders: list[Bbox]
    data: np.ndarray  # the plotted points, one (x, y) row each
    levels: list[float]  # heights of target lines

    def fits(self, words: Bbox, leader: Bbox, own_ring: int) -> bool:
        # Words must clear everything; a leader line may pass a ring, but not cross other words or leaders.
        rings = (box for i, box in enumerate(self.rings) if i != own_ring)
        if any(words.overlaps(box) for box in (*rings, *self.words, *self.leaders)):
            return False
        return not any(leader.overlaps(box) for box in (*self.words, *self.leaders))

    def hidden_data(self, words: Bbox) -> int:
        """How many plotted points the words would hide; crossing a target line counts as hiding many."""
        px, py = self.data[:, 0], self.data[:, 1]
        points = int(
            np.count_nonzero((px >= words.x0) & (px <= words.x1) & (py >= words.y0) & (py <= words.y1))
        )
        crossed = sum(1 for level in self.levels if words.y0 <= level <= words.y1)
        return points + 1000 * crossed


def _label_the_first(
    ax: Axes, points: Sequence[OddPoint], targets: Sequence[Text], data: np.ndarray, renderer: RendererBase
) -> int:
    """Words for the first few points, each where it overlaps nothing else; returns how many got words."""
    scale = ax.get_figure(root=True).dpi / 72  # type: ignore[union-attr]  # points to pixels
    centres = ax.transData.transform([(p.x, p.y) for p in points])
    ring = (RING_SIZE / 2 + 1.1) * scale
    taken = _TakenSpace(
        rings=[Bbox.from_extents(cx - ring, cy - ring, cx + ring, cy + ring) for cx, cy in centres],
        words=[t.get_window_extent(renderer).padded(_LABEL_GAP_PX) for t in targets],
        leaders=[],
        data=ax.transData.transform(data) if len(data) else np.zeros((0, 2)),
        levels=[float(ax.transData.transform((0.0, t.get_position()[1]))[1]) for t in targets],
    )
    plot = ax.get_window_extent(renderer)
    # The drawn box around the words is 0.25 em wider on each side than the words themselves.
    pad = _LABEL_GAP_PX + 0.25 * theme.ANNOTATION_PT * scale
    low, high = ax.get_ylim()
    labelled = 0
    for i, point in enumerate(points[:MAX_LABELLED_ANOMALIES]):
        # Places are worked out from one measurement of the words: laying out a real annotation
        # (its leader line clipped to its box) for every candidate costs milliseconds each.
        probe = ax.text(0.0, 0.0, point.label, **_LABEL_STYLE)
        size = probe.get_window_extent(renderer)
        probe.remove()
        above_first = (point.y - low) / (high - low) < 0.72
        candidates = _candidate_places(centres[i], size.width, size.height, above_first, scale, pad)
        chosen = _first_free_place(candidates, i, plot, taken)
        if chosen is None:
            continue  # its ring stays, explained by the key under the chart
        dx, dy, align = chosen
        ax.annotate(
            point.label,
            xy=(point.x, point.y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=align,
            va="bottom" if dy > 0 else "top",
            bbox={
                "boxstyle": "round,pad=0.25",
                "facecolor": theme.BACKGROUND,
                "edgecolor": "none",
                "alpha": 0.9,
            },
            arrowprops={"arrowstyle": "-", "color": theme.ANOMALY_COLOUR, "linewidth": 1.2, "shrinkB": 6},
            zorder=6,
            **_LABEL_STYLE,
        )
        labelled += 1
    return labelled


_Place = tuple[int, int, _HorizontalAlignment]


def _candidate_places(
    point: np.ndarray, width: float, height: float, above_first: bool, scale: float, pad: float
) -> list[tuple[_Place, Bbox, Bbox]]:
    """Each place nearest first, with the padded box its words would take and the box of its leader line."""
    px, py = float(point[0]), float(point[1])
    places = []
    for side in (1, -1) if above_first else (-1, 1):
        for dx, dy, align in _LABEL_OFFSETS:
            x0 = px + dx * scale - {"left": 0.0, "center": width / 2, "right": width}[align]
            y0 = py + side * dy * scale - (0.0 if side > 0 else height)
            words = Bbox.from_bounds(x0, y0, width, height)
            # The leader runs from the middle of the words to the point (its drawn part is shorter).
            cx, cy = x0 + width / 2, y0 + height / 2
            leader = Bbox.from_extents(min(cx, px), min(cy, py), max(cx, px), max(cy, py))
            places.append(((dx, side * dy, align), words.padded(pad), leader))
    return places


def _first_free_place(
    candidates: Sequence[tuple[_Place, Bbox, Bbox]], ring_index: int, plot: Bbox, taken: _TakenSpace
) -> _Place | None:
    """The first place inside the plot clear of everything taken, which it then takes.

    Among those, the nearest place hiding no data wins, else the one hiding the least.
    """
    best: tuple[int, _Place, Bbox, Bbox] | None = None
    for place, words, leader in candidates:
        inside = plot.x0 <= words.x0 and words.x1 <= plot.x1 and plot.y0 <= words.y0 and words.y1 <= plot.y1
        if not inside or not taken.fits(words, leader, ring_index):
            continue
        hidden = taken.hidden_data(words)
        if best is None or hidden < best[0]:
            best = (hidden, place, words, leader)
        if hidden == 0:
            break
    if best is None:
        return None
    _, place, words, leader = best
    taken.words.append(words)
    taken.leaders.append(leader)
    return place


def _draw_ring_key(figure: Figure, words: str, renderer: RendererBase) -> None:
    """Explains the rings left without words, in the footer row between the data stamp and the brand."""
    width, height = figure.canvas.get_width_height()
    footer = [t.get_window_extent(renderer) for t in figure.texts if t.get_position()[1] == theme.FOOTER_Y]
    stamp_end = max((b.x1 for b in footer if b.x0 < width / 2), default=0.0)
    brand_start = min((b.x0 for b in footer if b.x0 >= width / 2), default=float(width))
    key = figure.text(
        (brand_start - _KEY_GAP_PX) / width,
        theme.FOOTER_Y,
        words,
        ha="right",
        va="bottom",
        fontsize=theme.FOOTER_PT,
        color=theme.TEXT_COLOUR,
    )
    box = key.get_window_extent(renderer)
    ring_x = box.x0 - box.height * 0.9
    if ring_x - box.height < stamp_end + _KEY_GAP_PX:
        key.remove()  # no room beside a long stamp; the labelled rings still show what a ring means
        return
    # A real marker, not a glyph, so the key looks exactly like the rings in the plot.
    figure.add_artist(
        Line2D(
            [ring_x / width],
            [(box.y0 + box.y1) / 2 / height],
            transform=figure.transFigure,
            linestyle="none",
            marker="o",
            markersize=RING_SIZE * 0.7,
            markerfacecolor="none",
            markeredgecolor=theme.ANOMALY_COLOUR,
            markeredgewidth=1.8,
        )
    )


def measuring_renderer(figure: Figure) -> RendererBase:
    """A renderer to measure text with; the Agg canvas keeps it, so the PNG drawn afterwards reuses it."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    # backend_agg is unannotated; get_renderer returns its RendererAgg, sized to the figure.
    return cast(RendererBase, canvas.get_renderer())  # type: ignore[no-untyped-call]
