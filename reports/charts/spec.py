"""Chart specification: the one JSON-serialisable description both PNG and SVG renderers draw from."""

from __future__ import annotations

import hashlib
import json
import math
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, cast, get_args

from babel import Locale, UnknownLocaleError

ChartKind = Literal["line", "bar", "stacked_bar", "area", "kpi_tile", "table", "funnel", "cohort_heatmap"]
Unit = Literal["currency", "percent", "count", "duration", "number"]
AnnotationKind = Literal["anomaly", "target"]
Direction = Literal["up_is_good", "down_is_good"]

MAX_SERIES = 8
# Bumped whenever the meaning of a field changes, so old fingerprints never collide with new ones.
SPEC_SCHEMA_VERSION = 1

TIME_SERIES_KINDS: frozenset[str] = frozenset({"line", "area"})
CATEGORY_KINDS: frozenset[str] = frozenset({"bar", "stacked_bar", "table", "funnel"})
TARGET_KINDS: frozenset[str] = frozenset({"line", "area", "bar", "stacked_bar"})
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def _finite_or_none(value: float | None, where: str) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where}: values must be finite numbers or None for a gap, got {value!r}")
    return number


@dataclass(frozen=True)
class Series:
    """One named line, bar group or table column; None marks a gap (no data), not zero.

    unit overrides the chart's unit for this series; only tables use it (revenue next to order counts).
    """

    name: str
    values: tuple[float | None, ...]
    unit: Unit | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("series name must not be empty")
        if self.unit is not None and self.unit not in get_args(Unit):
            raise ValueError(f"series {self.name!r}: unit must be one of {get_args(Unit)}, got {self.unit!r}")
        # Normalising ints to floats keeps the fingerprint identical for 1 and 1.0.
        normalised = tuple(_finite_or_none(v, f"series {self.name!r}") for v in self.values)
        object.__setattr__(self, "values", normalised)


@dataclass(frozen=True)
class Annotation:
    """An anomaly marker at a point (x_index, on series_name or the first series) or a target line at a value.

    deviation is how far an odd point lies from what was expected, in the chart's unit; when a chart
    has more anomalies than it can label, the largest deviations get the words and the rest a bare marker.
    """

    kind: AnnotationKind
    label: str = ""
    x_index: int | None = None
    value: float | None = None
    series_name: str | None = None
    deviation: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(AnnotationKind):
            raise ValueError(f"annotation kind must be one of {get_args(AnnotationKind)}, got {self.kind!r}")
        if self.kind == "anomaly":
            if self.x_index is None:
                raise ValueError("an anomaly annotation needs x_index (the position of the odd point)")
            if not self.label.strip():
                raise ValueError("an anomaly annotation needs a label explaining what is odd")
        if self.kind == "target" and self.value is None:
            raise ValueError("a target annotation needs a value")
        object.__setattr__(self, "value", _finite_or_none(self.value, "annotation value"))
        object.__setattr__(self, "deviation", _finite_or_none(self.deviation, "annotation deviation"))


@dataclass(frozen=True)
class KpiTile:
    """A headline number; change_pct is a ratio (0.123 means +12.3%), like every percent in a spec.

    value None means the period has no data (a ratio or average without a denominator), which the
    tile says in words; it is never drawn as 0.
    """

    value: float | None
    previous_value: float | None = None
    change_pct: float | None = None
    direction: Direction = "up_is_good"

    def __post_init__(self) -> None:
        if self.direction not in get_args(Direction):
            raise ValueError(f"kpi direction must be one of {get_args(Direction)}, got {self.direction!r}")
        object.__setattr__(self, "value", _finite_or_none(self.value, "kpi value"))
        object.__setattr__(self, "previous_value", _finite_or_none(self.previous_value, "kpi previous_value"))
        object.__setattr__(self, "change_pct", _finite_or_none(self.change_pct, "kpi change_pct"))
        if self.value is None and self.change_pct is not None:
            raise ValueError("a kpi without a value has no change to show; leave change_pct None")

    @classmethod
    def compare(cls, value: float | None, previous_value: float | None, direction: Direction) -> KpiTile:
        """Build a tile whose change is derived from the two values (None when either is unknown or the previous is 0)."""
        change = None
        if value is not None and previous_value is not None and previous_value != 0:
            change = (value - previous_value) / abs(previous_value)
        return cls(value=value, previous_value=previous_value, change_pct=change, direction=direction)


@dataclass(frozen=True)
class ChartSpec:
    """Everything needed to draw one chart; rendering never looks anything else up."""

    kind: ChartKind
    title: str
    period_label: str
    data_as_of: datetime
    unit: Unit
    currency: str | None = None
    locale: str = "en_US"
    timezone: str = "UTC"
    series: tuple[Series, ...] = ()
    categories: tuple[str, ...] = ()
    x_dates: tuple[date | datetime, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    kpi: KpiTile | None = None
    heatmap: tuple[tuple[float | None, ...], ...] | None = None
    heatmap_columns: tuple[str, ...] = ()
    subtitle: str | None = None
    summary: str | None = field(default=None)
    #: How long each of x_dates' buckets is ("day", "week", "month", …), for words that name them; None: not
    #: over time, or not known (the words then read the buckets' length off the dates).
    grain: str | None = None

    def __post_init__(self) -> None:
        self._normalise_collections()
        self._check_header()
        self._check_series()
        self._check_kind_shape()
        self._check_annotations()

    def _normalise_collections(self) -> None:
        # Callers often pass lists; tuples keep the spec hashable and its equality meaningful.
        object.__setattr__(self, "series", tuple(self.series))
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "x_dates", tuple(self.x_dates))
        object.__setattr__(self, "annotations", tuple(self.annotations))
        object.__setattr__(self, "heatmap_columns", tuple(self.heatmap_columns))
        if self.heatmap is not None:
            rows = tuple(
                tuple(_finite_or_none(v, f"heatmap row {i}") for v in row)
                for i, row in enumerate(self.heatmap)
            )
            object.__setattr__(self, "heatmap", rows)

    def _check_header(self) -> None:
        if self.kind not in get_args(ChartKind):
            raise ValueError(f"chart kind must be one of {get_args(ChartKind)}, got {self.kind!r}")
        if self.unit not in get_args(Unit):
            raise ValueError(f"unit must be one of {get_args(Unit)}, got {self.unit!r}")
        if not self.title.strip():
            raise ValueError("title must not be empty")
        if self.data_as_of.tzinfo is None or self.data_as_of.utcoffset() is None:
            raise ValueError("data_as_of must be timezone-aware so the freshness stamp is unambiguous")
        shows_money = self.unit == "currency" or any(s.unit == "currency" for s in self.series)
        if shows_money:
            if self.currency is None or not _CURRENCY_CODE.match(self.currency):
                raise ValueError(f"unit 'currency' needs a 3-letter ISO currency code, got {self.currency!r}")
        elif self.currency is not None:
            raise ValueError(f"currency {self.currency!r} given but nothing in the chart has unit 'currency'")
        try:
            Locale.parse(self.locale)
        except (UnknownLocaleError, ValueError) as error:
            raise ValueError(f"unknown locale {self.locale!r}") from error
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {self.timezone!r}") from error

    def _check_series(self) -> None:
        if self.kind != "table" and any(s.unit is not None for s in self.series):
            raise ValueError("a per-series unit only makes sense in a table; charts share one value axis")
        if len(self.series) > MAX_SERIES:
            raise ValueError(
                f"at most {MAX_SERIES} series fit a readable chart, got {len(self.series)}; "
                "group the smallest into 'Other'"
            )
        names = [s.name for s in self.series]
        if len(set(names)) != len(names):
            raise ValueError(f"series names must be unique, got {names}")

    def _check_kind_shape(self) -> None:
        if self.kind in TIME_SERIES_KINDS:
            self._check_time_axis(required=True)
        elif self.kind in CATEGORY_KINDS:
            self._check_category_axis()
        elif self.kind == "kpi_tile":
            if self.kpi is None:
                raise ValueError("a kpi_tile chart needs kpi")
            if self.series:
                self._check_time_axis(required=False)  # optional sparkline
        elif self.kind == "cohort_heatmap":
            self._check_heatmap()

    def _check_time_axis(self, *, required: bool) -> None:
        if required and not self.series:
            raise ValueError(f"a {self.kind} chart needs at least one series")
        if not self.x_dates:
            raise ValueError(f"a {self.kind} chart needs x_dates")
        if len({type(x) is datetime for x in self.x_dates}) > 1:
            raise ValueError("x_dates must be all dates or all datetimes, not a mix")
        if any(later <= earlier for earlier, later in zip(self.x_dates, self.x_dates[1:], strict=False)):
            raise ValueError("x_dates must be strictly increasing")
        for s in self.series:
            if len(s.values) != len(self.x_dates):
                raise ValueError(
                    f"series {s.name!r} has {len(s.values)} values but there are {len(self.x_dates)} x_dates"
                )

    def _check_category_axis(self) -> None:
        if not self.categories:
            raise ValueError(f"a {self.kind} chart needs categories")
        if not self.series:
            raise ValueError(f"a {self.kind} chart needs at least one series")
        for s in self.series:
            if len(s.values) != len(self.categories):
                raise ValueError(
                    f"series {s.name!r} has {len(s.values)} values but there are "
                    f"{len(self.categories)} categories"
                )
        if self.kind == "funnel" and len(self.series) != 1:
            raise ValueError(f"a funnel chart takes exactly one series, got {len(self.series)}")
        if self.kind in ("funnel", "stacked_bar"):
            for s in self.series:
                if any(v is not None and v < 0 for v in s.values):
                    raise ValueError(f"a {self.kind} chart cannot show negative values (series {s.name!r})")

    def _check_heatmap(self) -> None:
        if self.heatmap is None or not self.heatmap:
            raise ValueError("a cohort_heatmap chart needs heatmap rows")
        if len(self.heatmap) != len(self.categories):
            raise ValueError(
                f"heatmap has {len(self.heatmap)} rows but there are {len(self.categories)} categories "
                "(one row label per cohort)"
            )
        if not self.heatmap_columns:
            raise ValueError("a cohort_heatmap chart needs heatmap_columns")
        for i, row in enumerate(self.heatmap):
            if len(row) != len(self.heatmap_columns):
                raise ValueError(
                    f"heatmap row {i} has {len(row)} cells but there are {len(self.heatmap_columns)} columns"
                )

    def _check_annotations(self) -> None:
        for annotation in self.annotations:
            if annotation.kind == "anomaly":
                if self.kind not in TIME_SERIES_KINDS:
                    raise ValueError(f"anomaly markers belong on line or area charts, not {self.kind}")
                assert annotation.x_index is not None
                if not 0 <= annotation.x_index < len(self.x_dates):
                    raise ValueError(
                        f"anomaly x_index {annotation.x_index} is outside 0..{len(self.x_dates) - 1}"
                    )
                if annotation.series_name is not None and annotation.series_name not in {
                    s.name for s in self.series
                }:
                    raise ValueError(f"anomaly refers to unknown series {annotation.series_name!r}")
            elif self.kind not in TARGET_KINDS:
                raise ValueError(f"a target line needs a value axis; {self.kind} has none")

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-ready dict; from_dict(to_dict()) gives back an equal spec."""
        return {
            "schema": SPEC_SCHEMA_VERSION,
            "kind": self.kind,
            "title": self.title,
            "period_label": self.period_label,
            "data_as_of": self.data_as_of.isoformat(),
            "unit": self.unit,
            "currency": self.currency,
            "locale": self.locale,
            "timezone": self.timezone,
            "series": [{"name": s.name, "values": list(s.values), "unit": s.unit} for s in self.series],
            "categories": list(self.categories),
            "x_dates": [x.isoformat() for x in self.x_dates],
            "annotations": [
                {
                    "kind": a.kind,
                    "label": a.label,
                    "x_index": a.x_index,
                    "value": a.value,
                    "series_name": a.series_name,
                    "deviation": a.deviation,
                }
                for a in self.annotations
            ],
            "kpi": None
            if self.kpi is None
            else {
                "value": self.kpi.value,
                "previous_value": self.kpi.previous_value,
                "change_pct": self.kpi.change_pct,
                "direction": self.kpi.direction,
            },
            "heatmap": None if self.heatmap is None else [list(row) for row in self.heatmap],
            "heatmap_columns": list(self.heatmap_columns),
            "subtitle": self.subtitle,
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartSpec:
        """Rebuild a spec from to_dict() output (e.g. read back from JSON); validation runs again."""
        schema = data.get("schema", SPEC_SCHEMA_VERSION)
        if schema != SPEC_SCHEMA_VERSION:
            raise ValueError(f"unsupported chart spec schema {schema!r}, expected {SPEC_SCHEMA_VERSION}")
        kpi = data.get("kpi")
        heatmap = data.get("heatmap")
        return cls(
            kind=cast(ChartKind, data["kind"]),
            title=data["title"],
            period_label=data["period_label"],
            data_as_of=datetime.fromisoformat(data["data_as_of"]),
            unit=cast(Unit, data["unit"]),
            currency=data.get("currency"),
            locale=data.get("locale", "en_US"),
            timezone=data.get("timezone", "UTC"),
            series=tuple(
                Series(s["name"], tuple(s["values"]), s.get("unit")) for s in data.get("series", ())
            ),
            categories=tuple(data.get("categories", ())),
            x_dates=tuple(_parse_x_date(x) for x in data.get("x_dates", ())),
            annotations=tuple(
                Annotation(
                    a["kind"],
                    a.get("label", ""),
                    a.get("x_index"),
                    a.get("value"),
                    a.get("series_name"),
                    a.get("deviation"),
                )
                for a in data.get("annotations", ())
            ),
            kpi=None if kpi is None else KpiTile(**kpi),
            heatmap=None if heatmap is None else tuple(tuple(row) for row in heatmap),
            heatmap_columns=tuple(data.get("heatmap_columns", ())),
            subtitle=data.get("subtitle"),
            summary=data.get("summary"),
        )

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, no NaN, so equal specs give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ChartSpec:
        return cls.from_dict(json.loads(text))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON; stable across processes and machines."""
        # Memoised on the instance (it is frozen, so it cannot go stale): PNG and SVG of one spec,
        # and every cache lookup, would otherwise re-serialise the whole series.
        remembered: str | None = self.__dict__.get("_fingerprint")
        if remembered is None:
            remembered = hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()
            object.__setattr__(self, "_fingerprint", remembered)
        return remembered


def _parse_x_date(text: str) -> date | datetime:
    # isoformat() writes a "T" only for datetimes, which is how the two round-trip distinctly.
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
