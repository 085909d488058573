from tests.factories import make_world, receive, idem


async def test_receipt_then_issue_moves_stock(client, admin, operator, uid):
    w = await make_world(client, admin, uid)
    first = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="12000.5", lot="B1")
    lot_id = first["postings"][0]["account"]["lot_id"]
    r = await client.post("/api/v1/movements", headers={**operator, **idem()}, json={
        "kind": "issue", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "500"})
    assert r.status_code == 201, r.text
    assert r.json()["balances"] == [{"lot_id": lot_id, "owner": w.civil, "balance": "11500.5", "reserved": "0.0", "available": "11500.5"}]
