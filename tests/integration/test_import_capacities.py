"""`stockpile import --resource capacities FILE.csv`: capacity surveys arrive as spreadsheets; each row
is a survey (as ``PUT /capacities/{code}``), all or nothing unless ``--per-row``, every refused row
named by its line."""

from __future__ import annotations

from datetime import date, timedelta

from tests.integration.test_import import loaded, query, stockpile, write  # noqa: F401 - the fixture is used

SURVEYED = (date.today() - timedelta(days=20)).isoformat()
CAPACITIES = ("code,party,material,daily_quantity,lead_days,region,warehouse,surveyed_on,survey_interval_days,note\n"
              f"CAP-REFINERY,IMP-CIV,IMP-DIESEL,12000.5,5,IMP-N,IMP-W1,{SURVEYED},180,crude unit 2\n"
              f"CAP-MILL,IMP-CIV,IMP-RICE,4000,10,IMP-NAT,,{SURVEYED},365,\n")


async def _capacities(url: str) -> list[tuple]:
    rows = await query(url, """SELECT k.code, k.daily_quantity, k.lead_days, count(s.id) AS surveys
                                 FROM capacities k LEFT JOIN capacity_surveys s ON s.capacity_id = k.id
                                GROUP BY k.id ORDER BY k.code""")
    return [(r["code"], r["daily_quantity"], r["lead_days"], r["surveys"]) for r in rows]


async def test_capacity_surveys_are_imported_from_a_spreadsheet(loaded, tmp_path):
    url = loaded
    done = stockpile(url, "import", write(tmp_path, "capacities.csv", CAPACITIES), "--resource", "capacities")
    assert done.returncode == 0, done.stderr
    assert await _capacities(url) == [("CAP-MILL", 4000, 10, 1), ("CAP-REFINERY", 120005, 5, 1)]
    again = stockpile(url, "import", write(tmp_path, "capacities.csv", CAPACITIES), "--resource", "capacities")
    assert again.returncode == 0 and "already imported" in again.stdout


async def test_a_refused_capacity_row_is_named_and_nothing_is_written(loaded, tmp_path):
    url = loaded
    bad = CAPACITIES + f"CAP-BAD,IMP-CIV,IMP-DIESEL,1.25,1,IMP-N,,{SURVEYED},30,\n"
    refused = stockpile(url, "import", write(tmp_path, "bad.csv", bad), "--resource", "capacities")
    assert refused.returncode == 1 and "line 4: validation" in refused.stderr and "daily_quantity" in refused.stderr
    assert await _capacities(url) == []
    per_row = stockpile(url, "import", write(tmp_path, "bad.csv", bad), "--resource", "capacities", "--per-row")
    assert per_row.returncode == 1 and [c[0] for c in await _capacities(url)] == ["CAP-MILL", "CAP-REFINERY"]
