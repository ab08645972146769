"""Bar values and target lines kept apart: a bar's value is never struck through by a target line, and a
target's words ("Target 95%") never sit on a bar's value.

A value written above its bar crosses the target line when the bar stops just short of it (93.3 % under a 95 %
line). Such a value moves inside the top of its bar, in a colour that reads on the bar; a bar too short to
hold it has its value lifted above the line instead. The target's words then take the first of four places
(right above the line, left above, right below, left below) that covers no value and no other target's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from reports.charts import theme
from reports.charts.anomaly_labels import measuring_renderer

# Points between a value and its bar's top, as bar_label draws it (padding=3).
_GAP_PT = 3.0
# A dashed line drawn 1.4 pt wide, in pixels either side of its centre, with a little air.
_LINE_HALF_PX = 2.5


@dataclass(frozen=True)
class BarValue:
    """A value written above a bar: its text, the bar's top (data units) and the bar's colour; `base` is
    where that colour starts (a stack's top part), which a value moved inside must fit above."""

    text: Annotation
    top: float
    colour: str
    base: float = 0.0


def keep_clear(
    ax: Axes, values: Sequence[BarValue], targets: Sequence[Text], target_values: Sequence[float]
) -> None:
    """Moves the values the target lines would strike through, then finds each target's words a free place."""
    figure = ax.get_figure(root=True)
    if not isinstance(figure, Figure) or not (values or targets):
        return
    renderer = measuring_renderer(figure)
    lines_px = [float(ax.transData.transform((0.0, v))[1]) for v in target_values]
    for value in values:
        _clear_of_lines(ax, value, lines_px, renderer)
    taken = [v.text.get_window_extent(renderer) for v in values]
    for target in targets:
        taken.append(_free_place(target, taken, renderer))


def _crosses(box: Bbox, lines_px: Sequence[float]) -> bool:
    return any(box.y0 - _LINE_HALF_PX <= y <= box.y1 + _LINE_HALF_PX for y in lines_px)


def _clear_of_lines(ax: Axes, value: BarValue, lines_px: Sequence[float], renderer: RendererBase) -> None:
    if value.top < 0:
        return  # a negative bar writes its value below the bar, away from any target above zero
    box = value.text.get_window_extent(renderer)
    if not _crosses(box, lines_px):
        return
    top_px = float(ax.transData.transform((0.0, value.top))[1])
    bottom_px = float(ax.transData.transform((0.0, value.base))[1])
    gap_px = _GAP_PT * theme.PNG_DPI / 72
    inside = Bbox.from_extents(box.x0, top_px - gap_px - box.height, box.x1, top_px - gap_px)
    if top_px - bottom_px >= box.height + 2 * gap_px and not _crosses(inside, lines_px):
        value.text.xyann = (0.0, -_GAP_PT)
        value.text.set_verticalalignment("top")
        value.text.set_color(_readable_on(value.colour))
        return
    # Too short to hold it (or a second line runs through its top): above the highest line it meets.
    above = max(y for y in lines_px if box.y0 - _LINE_HALF_PX <= y <= box.y1 + _LINE_HALF_PX)
    value.text.xy = (value.text.xy[0], float(ax.transData.inverted().transform((0.0, above))[1]))


def _readable_on(colour: str) -> str:
    """White on a dark bar, the text colour on a light one (WCAG's relative luminance, threshold 0.4)."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(c) for c in to_rgb(colour))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return theme.BACKGROUND if luminance < 0.4 else theme.TEXT_COLOUR


_Place = tuple[Literal["left", "right"], float, Literal["bottom", "top"]]
_PLACES: tuple[_Place, ...] = (
    ("right", 0.995, "bottom"),
    ("left", 0.005, "bottom"),
    ("right", 0.995, "top"),
    ("left", 0.005, "top"),
)


def _free_place(target: Text, taken: list[Bbox], renderer: RendererBase) -> Bbox:
    """Puts a target's words at the first place that covers nothing taken; the first place if none is free."""
    level = target.get_position()[1]
    for place in _PLACES:
        box = _put(target, place, level, renderer)
        if not any(box.overlaps(other) for other in taken):
            return box
    return _put(target, _PLACES[0], level, renderer)


def _put(target: Text, place: _Place, level: float, renderer: RendererBase) -> Bbox:
    align, x, vertical = place
    target.set_position((x, level))
    target.set_horizontalalignment(align)
    target.set_verticalalignment(vertical)
    return target.get_window_extent(renderer)
