"""How an export writes JSON items as CSV: cells, dotted columns and chunks."""

from __future__ import annotations

import csv
import io

from stockpile.api.exports import CHUNK_BYTES, Counted, cell, csv_chunks


async def _items(items):
    for item in items:
        yield item


async def _written(columns, items, counted=None) -> list[bytes]:
    return [chunk async for chunk in csv_chunks(columns, _items(items), counted)]


def test_a_cell_is_the_json_value_as_text():
    assert [cell(v) for v in ("1200.500", None, True, False, 3, 0.25, [1, "a"], {"min": "2.0", "max": None})] == [
        "1200.500", "", "true", "false", "3", "0.25", '[1,"a"]', '{"min":"2.0","max":null}']


async def test_nested_members_are_dotted_columns_and_missing_ones_empty():
    items = [{"code": "T-1", "scope": {"warehouse": "WH-N"}, "quantity": "10.0"},
             {"code": "T-2", "scope": {"region": "R-N"}, "quantity": "2.5"}]
    text = b"".join(await _written(("code", "scope.warehouse", "scope.region", "quantity"), items)).decode()
    assert text == "code,scope.warehouse,scope.region,quantity\r\nT-1,WH-N,,10.0\r\nT-2,,R-N,2.5\r\n"


async def test_text_with_commas_quotes_and_line_breaks_reads_back_as_written():
    note = 'delivery "4471", gate 2\nsigned, late'
    chunks = await _written(("id", "note"), [{"id": "m-1", "note": note}])
    assert list(csv.reader(io.StringIO(b"".join(chunks).decode()))) == [["id", "note"], ["m-1", note]]


async def test_an_empty_list_is_its_header_alone():
    assert await _written(("id", "kind"), []) == [b"id,kind\r\n"]


async def test_rows_leave_in_chunks_of_whole_rows_and_are_counted():
    counted = Counted()
    rows = [{"id": f"{i:06d}", "quantity": "1.5"} for i in range(20_000)]
    chunks = await _written(("id", "quantity"), rows, counted)
    assert len(chunks) > 2 and counted.rows == 20_000
    assert all(len(chunk) < CHUNK_BYTES + 100 and chunk.endswith(b"\r\n") for chunk in chunks)
    assert b"".join(chunks).decode().splitlines()[1:] == [f"{i:06d},1.5" for i in range(20_000)]
