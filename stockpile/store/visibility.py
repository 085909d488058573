"""The one visibility filter: what a reader may see, as SQL conditions every read goes through.

Each condition is a template over the reader's limits — ``{warehouses}`` (bigint[] of warehouse
ids, NULL = national), ``{regions}`` (bigint[] of region ids, NULL = national) and ``{cleared}``
(boolean: cleared for military stock) — formatted with the placeholders of the statement that uses
it. The rules are those of ``stockpile.domain.access``; a read of a new resource adds its condition
here, not in its own module.
"""

from __future__ import annotations

# Allocation (``stockpile.domain.access``: request_visible, plan_visible, drill_visible,
# obligation_visible).

# An allocation request (``r``): its destination in the reader's warehouses, and its requester not
# military unless the reader is cleared.
REQUESTS = """
    ({warehouses}::bigint[] IS NULL OR r.destination_id = ANY({warehouses}))
    AND ({cleared} OR NOT EXISTS (SELECT 1 FROM parties vq WHERE vq.id = r.requester_id AND vq.sector = 'military'))"""

# An allocation plan (``p``): no military requester unless cleared, and either every request's
# destination or (it has lines) every warehouse it draws from in the reader's warehouses.
PLANS = """
    ({cleared} OR NOT EXISTS (
        SELECT 1 FROM plan_requests vpr JOIN allocation_requests vr ON vr.id = vpr.request_id
          JOIN parties vq ON vq.id = vr.requester_id
         WHERE vpr.plan_id = p.id AND vq.sector = 'military'))
    AND ({warehouses}::bigint[] IS NULL
         OR NOT EXISTS (SELECT 1 FROM plan_requests vpr JOIN allocation_requests vr ON vr.id = vpr.request_id
                         WHERE vpr.plan_id = p.id AND NOT vr.destination_id = ANY({warehouses}))
         OR (EXISTS (SELECT 1 FROM plan_lines vl WHERE vl.plan_id = p.id)
             AND NOT EXISTS (SELECT 1 FROM plan_lines vl WHERE vl.plan_id = p.id
                                AND NOT vl.warehouse_id = ANY({warehouses}))))"""

# A drill (``d``): national readers, or readers holding every destination it planned for (the
# warehouse codes in ``scenario.destinations``; a drill stored without them is national only).
DRILLS = """
    ({warehouses}::bigint[] IS NULL
     OR (d.scenario ? 'destinations' AND NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements_text(d.scenario->'destinations') vd(code)
              LEFT JOIN warehouses vw ON vw.code = vd.code
             WHERE vw.id IS NULL OR NOT vw.id = ANY({warehouses}))))"""

# An obligation (``o``; ``c`` its creditor, ``d`` its debtor): neither party military unless the
# reader is cleared, and its lot's warehouse or a destination it was drawn for in the reader's warehouses.
OBLIGATIONS = """
    ({cleared} OR (c.sector <> 'military' AND d.sector <> 'military'))
    AND ({warehouses}::bigint[] IS NULL
         OR EXISTS (SELECT 1 FROM lots vl WHERE vl.id = o.lot_id AND vl.warehouse_id = ANY({warehouses}))
         OR EXISTS (SELECT 1 FROM plan_lines vpl JOIN allocation_requests vr ON vr.id = vpl.request_id
                     WHERE vpl.obligation_id = o.id AND vr.destination_id = ANY({warehouses})))"""
