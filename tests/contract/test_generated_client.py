"""A client generated from the served OpenAPI document (openapi-python-client) works against the
live service: master data, a receipt, an issue that takes the first-expiring lot first, its
replay under the same Idempotency-Key, a refused issue read as a typed problem, and a stock read.
The generated models carry every member the service sends (nothing lands in their catch-all
``additional_properties``), so the document describes the answers as they are."""

from __future__ import annotations

import datetime
import importlib
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import attrs
import httpx
import pytest

PACKAGE = "stockpile_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(demo_service, tmp_path_factory):
    """The client package generated from the served document, imported (module name ``PACKAGE``)."""
    base, _ = demo_service
    where = tmp_path_factory.mktemp("client")
    document = where / "openapi.json"
    document.write_bytes(httpx.get(f"{base}/schema/openapi.json", timeout=30).content)
    config = where / "generator.yaml"
    config.write_text("post_hooks: []\n")
    done = subprocess.run([str(GENERATOR), "generate", "--path", str(document), "--meta", "none",
                           "--output-path", str(where / PACKAGE), "--config", str(config)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def part(generated, module: str):
    return importlib.import_module(f"{PACKAGE}.{module}")


def no_unknown_members(model) -> None:
    """Every member the service sent is a declared field of the generated model, all the way down."""
    assert model.additional_properties == {}, (type(model).__name__, model.additional_properties)
    for value in (getattr(model, f.name) for f in attrs.fields(type(model))):
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "additional_properties") and not type(item).__name__.endswith(("Details", "Capacity")):
                no_unknown_members(item)


async def test_a_generated_client_runs_a_receipt_an_issue_a_replay_a_refusal_and_a_stock_read(generated, demo_service):
    base, headers = demo_service
    models = part(generated, "models")
    client = generated.AuthenticatedClient(base_url=base, token=headers["Authorization"].removeprefix("Bearer "))
    uid = uuid.uuid4().hex[:6].upper()
    region, owner, warehouse, material = f"GEN-R-{uid}", f"GEN-P-{uid}", f"GEN-W-{uid}", f"GEN-M-{uid}"

    async with client:
        upsert = lambda name: part(generated, f"api.master_data.api_v1_{name}_code_upsert")  # noqa: E731
        made = await upsert("regions").asyncio_detailed(region, client=client, body=models.RegionIn(name="Generated"))
        assert made.status_code == 201 and made.parsed.code == region
        await upsert("parties").asyncio(owner, client=client, body=models.PartyIn(
            name="Generated bureau", sector=models.PartyInSector.CIVILIAN))
        await upsert("warehouses").asyncio(warehouse, client=client, body=models.WarehouseIn(
            name="Generated depot", operator=owner, region=region, kind=models.WarehouseInKind.CIVILIAN,
            latitude=50.1, longitude=14.4))
        stored = await upsert("materials").asyncio(material, client=client, body=models.MaterialIn(
            name="Generated diesel", category=models.MaterialInCategory.FUEL, unit="L", decimals=1,
            shelf_life_days=1000))
        assert isinstance(stored, models.Material) and stored.decimals == 1
        no_unknown_members(stored)

        post = part(generated, "api.ledger.api_v1_movements_create")
        later, sooner = datetime.date(2031, 1, 1), datetime.date(2029, 6, 30)
        for code, expires_on, quantity in (("LATER", later, "200.5"), ("SOONER", sooner, "100")):
            receipt = await post.asyncio_detailed(client=client, idempotency_key=f"gen-receipt-{code}-{uid}",
                                                  body=models.Receipt(kind="receipt", warehouse=warehouse,
                                                                      material=material, owner=owner, quantity=quantity,
                                                                      lot=models.LotIn(code=code, expires_on=expires_on)))
            assert receipt.status_code == 201, receipt.content
            assert isinstance(receipt.parsed, models.PostedMovement)
            assert receipt.parsed.kind == "receipt" and receipt.parsed.balances[0].balance == f"{Decimal(quantity):.1f}"
            no_unknown_members(receipt.parsed)

        issue = models.Issue(kind="issue", warehouse=warehouse, material=material, owner=owner, quantity="150",
                             reason="consumption")
        key = f"gen-issue-{uid}"
        issued = await post.asyncio_detailed(client=client, idempotency_key=key, body=issue)
        assert issued.status_code == 201, issued.content
        movement = issued.parsed
        assert isinstance(movement, models.PostedMovement) and isinstance(movement.id, uuid.UUID)
        no_unknown_members(movement)
        taken = {b.lot_id: b.balance for b in movement.balances}
        stock_deltas = [p.delta for p in movement.postings if p.account.type_ == models.AccountType.STOCK]
        assert sorted(stock_deltas) == ["-100.0", "-50.0"]  # the sooner lot emptied first, the rest from the later
        assert sorted(taken.values()) == ["0.0", "150.5"]

        replay = await post.asyncio_detailed(client=client, idempotency_key=key, body=issue)
        assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
        assert replay.parsed.id == movement.id

        refused = await post.asyncio_detailed(client=client, idempotency_key=f"gen-refused-{uid}", body=models.Issue(
            kind="issue", warehouse=warehouse, material=material, owner=owner, quantity="1000"))
        assert refused.status_code == 409 and isinstance(refused.parsed, models.Problem)
        assert refused.parsed.type_ == "insufficient-stock" and refused.parsed.available == "150.5"
        assert refused.headers["content-type"].startswith("application/problem+json")

        listing = part(generated, "api.stock.api_v1_stock_listing")
        page = await listing.asyncio(client=client, warehouse=warehouse, material=material, limit=10)
        assert isinstance(page, models.PositionPage) and page.next_cursor is None
        [position] = page.items
        no_unknown_members(position)
        assert (position.lot_code, position.owner, position.balance, position.available, position.expires_on) == (
            "LATER", owner, "150.5", "150.5", later)
        assert position.owner_sector == models.PositionOwnerSector.CIVILIAN and position.expired is False
