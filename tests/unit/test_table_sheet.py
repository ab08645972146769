"""A page's table read from its HTML as shown (api/table_exports.table_sheet), without a server."""

from __future__ import annotations

from api.table_exports import table_sheet

PAGE = """<html><body><h1>Performance</h1>
<table id="other"><tr><td>not this one</td></tr></table>
<table id="jobs">
  <caption class="sr-only">Each background job</caption>
  <thead><tr><th>Job</th><th class="num">Runs</th><th>Revenue</th><th data-no-export><span>Actions</span></th></tr></thead>
  <tbody>
    <tr><td>Delivery &amp; retries</td><td class="num">12</td><td>€1,234.50</td><td><form><button>Remove</button></form></td></tr>
    <tr><td>  Rollups
        (daily) </td><td>0012</td><td>-3</td><td><button>Remove</button></td></tr>
    <tr><td>Nested</td><td><table><tr><td>inner</td></tr></table>7</td><td>=SUM(A1)</td><td></td></tr>
    <tr><td colspan="4" class="empty">No more jobs.</td></tr>
  </tbody>
</table></body></html>"""


def test_the_named_table_is_read_as_shown() -> None:
    sheet = table_sheet(PAGE, "jobs", page="/analytics/performance", timezone="Europe/Berlin")
    assert sheet is not None
    assert sheet.title == "Each background job"
    assert sheet.heading == ("Job", "Runs", "Revenue")  # the actions column is left out
    assert sheet.rows == (
        ("Delivery & retries", 12.0, "€1,234.50"),  # a plain figure is a number; money stays as shown
        ("Rollups (daily)", "0012", -3.0),  # whitespace folded; a code with a leading zero stays text
        ("Nested", 7.0, "=SUM(A1)"),  # an inner table is not part of the cell
    )  # and the placeholder row across the table is not a row of figures
    assert sheet.footnote.startswith("Each background job, as shown on /analytics/performance at ")
    assert sheet.footnote.endswith("(Europe/Berlin).")


def test_a_missing_table_is_none() -> None:
    assert table_sheet(PAGE, "nothing", page="/x", timezone="UTC") is None


def test_a_cell_keeps_its_line_breaks_and_folds_the_rest() -> None:
    page = """<table id="keys"><thead><tr><th>Addresses</th></tr></thead><tbody>
      <tr><td>
        <code>https://a.example</code><br><code>https://b.example</code>
      </td></tr>
      <tr><td><br>only <b>one</b>   line</td></tr>
    </tbody></table>"""
    sheet = table_sheet(page, "keys", page="/x", timezone="UTC")
    assert sheet is not None
    assert sheet.rows == (("https://a.example\nhttps://b.example",), ("only one line",))
