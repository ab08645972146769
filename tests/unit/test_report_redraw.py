"""The "By …" buttons under a report: which splits they offer, and what a Telegram button's data may run."""

from __future__ import annotations

import pytest

from reports.destinations import slack_redraw_blocks, telegram_redraw_keyboard
from reports.metrics import get_metric
from reports.redraw import MAX_REDRAWS, TELEGRAM_DATA_LIMIT, parse_redraw, redraws


def _definition(metric: str, dimensions: list[str]) -> dict[str, object]:
    return {
        "query": {"metrics": [metric], "dimensions": dimensions, "period": {"kind": "last_n_days", "n": 7}}
    }


def test_offers_the_metrics_other_splits_and_runs_them_as_typed() -> None:
    offered = redraws("revenue-by-clinic", _definition("revenue", ["location"]))
    allowed = [d for d in get_metric("revenue").dimensions if d != "location"]
    assert [r.split for r in offered] == allowed[:MAX_REDRAWS] and offered
    first = offered[0]
    assert first.command == f"report run revenue-by-clinic by {first.split.replace('_', ' ')}"
    assert parse_redraw(first.telegram_data) == first.command


def test_a_report_without_a_known_metric_gets_no_buttons() -> None:
    assert redraws("x", {"query": {"metrics": ["no_such_metric"]}}) == ()
    assert redraws("x", {}) == ()


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "sb:abc",
        "sbr:",
        "sbr:slug",
        "sbr:slug:",
        "sbr:slug:location; campaign cancel x",
        "sbr:Slug:x",
    ],
)
def test_telegram_data_that_is_not_a_well_formed_redraw_runs_nothing(data: str | None) -> None:
    assert parse_redraw(data) is None


def test_a_report_address_too_long_for_telegram_gets_no_telegram_button_but_keeps_slacks() -> None:
    offered = redraws("r" * 70, _definition("revenue", []))
    assert offered and all(r.telegram_data is None for r in offered)
    assert telegram_redraw_keyboard(offered) is None
    short = redraws("weekly", _definition("revenue", []))
    keyboard = telegram_redraw_keyboard(short)
    assert keyboard is not None and all(
        len((b.callback_data or "").encode()) <= TELEGRAM_DATA_LIMIT for b in keyboard.inline_keyboard[0]
    )
    blocks = slack_redraw_blocks(offered)
    assert [e["value"] for e in blocks[1]["elements"]] == [r.command for r in offered]


def test_slack_buttons_use_the_action_ids_the_bot_answers() -> None:
    from bot.slack.handlers import BUTTON_ACTION

    blocks = slack_redraw_blocks(redraws("weekly", _definition("revenue", [])))
    assert all(BUTTON_ACTION.match(e["action_id"]) for e in blocks[1]["elements"])


def test_a_recipients_own_filter_is_kept_by_the_redraw_in_slack_and_telegram() -> None:
    only = [{"dimension": "location", "operator": "in", "value": ["BER"]}]
    offered = redraws("weekly", _definition("revenue", ["location"]), only)
    assert offered and all(r.command.endswith(" only location BER") for r in offered)
    assert [parse_redraw(r.telegram_data) for r in offered] == [r.command for r in offered]
    assert parse_redraw("sbr:weekly:service:location=BER;x") is None
    assert parse_redraw("sbr:weekly:service:location") is None


def test_a_two_word_dimension_in_the_recipients_filter_survives_the_round_trip() -> None:
    only = [{"dimension": "source_channel", "operator": "in", "value": ["phone"]}]
    offered = redraws("weekly-orders", _definition("revenue", []), only)
    assert offered and all(r.command.endswith(" only source_channel phone") for r in offered)
    assert all(parse_redraw(r.telegram_data) == r.command for r in offered if r.telegram_data)


def test_xlsx_cells_drop_forbidden_control_characters_and_say_when_cut() -> None:
    import io

    import openpyxl

    from reports.exports import XLSX_CELL_LIMIT, SheetRows, sheet_xlsx

    long_text = "x" * (XLSX_CELL_LIMIT + 10)
    book = openpyxl.load_workbook(
        io.BytesIO(
            sheet_xlsx(SheetRows("Messages", ("Text",), (("Page\x0cbreak \x1b[0m",), (long_text,)), ""))
        )
    )
    sheet = book.active
    assert sheet is not None
    assert sheet.cell(2, 1).value == "Pagebreak [0m"
    cut = str(sheet.cell(3, 1).value)
    assert len(cut) == XLSX_CELL_LIMIT and cut.endswith("(cut: the cell limit is 32,767 characters)")
