"""The Switchboard chart look: colour-blind-safe palette, sizes readable as a Slack thumbnail, fixed layout."""

from __future__ import annotations

from typing import Final, Literal

from matplotlib.axes import Axes

# Okabe-Ito, reordered so the first colours contrast best on white; yellow is last because thin
# yellow lines vanish on a white background.
PALETTE: Final[tuple[str, ...]] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
# Good/bad pair that stays distinct for deuteranopes and protanopes; arrows and words carry it too.
GOOD_COLOUR: Final = "#0072B2"
BAD_COLOUR: Final = "#D55E00"
NEUTRAL_COLOUR: Final = "#555555"
# Near-black rather than a palette colour, so a marker is never mistaken for a series.
ANOMALY_COLOUR: Final = "#1A1A1A"
TARGET_COLOUR: Final = "#333333"
HEATMAP_COLOURMAP: Final = "cividis"

TEXT_COLOUR: Final = "#1A1A1A"
MUTED_TEXT_COLOUR: Final = "#5F5F5F"
GRID_COLOUR: Final = "#E3E3E3"
SPINE_COLOUR: Final = "#9A9A9A"
BACKGROUND: Final = "#FFFFFF"
TABLE_HEADER_FILL: Final = "#EEF3F8"
TABLE_STRIPE_FILL: Final = "#F7F7F7"

# 8 x 4.5 in at 150 dpi is 1200 x 675 px: 16:9, what Slack and Telegram preview without cropping.
FIGURE_INCHES: Final = (8.0, 4.5)
PNG_DPI: Final = 150
FONT_FAMILY: Final = "DejaVu Sans"

TITLE_PT: Final = 15.0
PERIOD_PT: Final = 11.5
TICK_PT: Final = 11.0
LEGEND_PT: Final = 11.0
ANNOTATION_PT: Final = 10.5
FOOTER_PT: Final = 9.5
KPI_VALUE_PT: Final = 44.0
KPI_CHANGE_PT: Final = 15.0

LINE_WIDTH: Final = 2.0
BRAND_STAMP: Final = "Switchboard"

# Fixed margins in figure fractions. Automatic layout engines measure every text twice and cost
# tens of milliseconds per chart; a fixed frame also keeps every chart in a feed aligned.
MARGIN_LEFT: Final = 0.085
MARGIN_RIGHT: Final = 0.975
TITLE_Y: Final = 0.945
PERIOD_Y: Final = 0.875
PLOT_TOP: Final = 0.80
PLOT_TOP_WITH_LEGEND_ROW: Final = 0.745
LEGEND_ROW_HEIGHT: Final = 0.06
PLOT_BOTTOM: Final = 0.14
FOOTER_Y: Final = 0.025
TEXT_LEFT: Final = 0.03


def series_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def style_value_axes(ax: Axes, *, grid_axis: Literal["x", "y", "none"] = "y") -> None:
    """Light grid behind the data, no box: the data carries the ink."""
    ax.set_facecolor(BACKGROUND)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(SPINE_COLOUR)
        ax.spines[side].set_linewidth(0.8)
    ax.spines["left"].set_visible(grid_axis != "y")
    ax.tick_params(
        axis="both", labelsize=TICK_PT, colors=MUTED_TEXT_COLOUR, labelcolor=TEXT_COLOUR, length=0, pad=6
    )
    ax.set_axisbelow(True)
    if grid_axis != "none":
        ax.grid(True, axis=grid_axis, color=GRID_COLOUR, linewidth=0.8)
