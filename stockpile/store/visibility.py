"""The one visibility filter: what a reader may see, as SQL conditions every read goes through.

Each condition is a template over the reader's limits — ``{warehouses}`` (bigint[] of warehouse
ids, NULL = national), ``{regions}`` (bigint[] of region ids, NULL = national) and ``{cleared}``
(boolean: cleared for military stock) — formatted with the placeholders of the statement that uses
it. The rules are those of ``stockpile.domain.access``; a read of a new resource adds its condition
here, not in its own module.
"""

from __future__ import annotations

# Stock counted by an aggregate shown to the reader (``o`` the owner): an uncleared reader's
# aggregates count no military stock at all, so no military position can be recovered from them.
COUNTED_STOCK = "({cleared} OR o.sector <> 'military')"

# A stock position (``w`` its lot's warehouse, ``o`` its owner): in the reader's warehouses, and
# not military-owned unless the reader is cleared.
POSITIONS = "({warehouses}::bigint[] IS NULL OR w.id = ANY({warehouses})) AND " + COUNTED_STOCK

# A rotation order: the rule of its position (its owner is ``ow`` there, ``o`` being the order).
ROTATION_ORDERS = POSITIONS.replace("o.sector", "ow.sector")

# A lot (``l``) that does not exist for a reader without clearance: a military party holds (or held)
# a position in it and no other party holds stock or reservations in it (see
# ``stockpile.domain.access.lot_disclosed``).
MILITARY_ONLY_LOT = """(
    EXISTS (SELECT 1 FROM accounts la JOIN parties lo ON lo.id = la.owner_id
             WHERE la.lot_id = l.id AND la.type = 'stock' AND lo.sector = 'military')
    AND NOT EXISTS (SELECT 1 FROM accounts la JOIN parties lo ON lo.id = la.owner_id
                     WHERE la.lot_id = l.id AND la.type = 'stock' AND lo.sector <> 'military'
                       AND (la.balance > 0 OR la.reserved > 0)))"""

# A lot (``l``, ``w`` its warehouse) in a list: in the reader's warehouses, and not military-only
# unless the reader is cleared (its figures then count only the stock ``COUNTED_STOCK`` lets through).
LOTS = "({warehouses}::bigint[] IS NULL OR w.id = ANY({warehouses})) AND ({cleared} OR NOT " + MILITARY_ONLY_LOT + ")"

# A movement (``mv``): it touches a warehouse in scope and, unless the reader is cleared, no
# military position.
MOVEMENTS = """
    ({warehouses}::bigint[] IS NULL OR EXISTS (
        SELECT 1 FROM postings vp JOIN accounts va ON va.id = vp.account_id JOIN lots vl ON vl.id = va.lot_id
         WHERE vp.movement_id = mv.id AND vl.warehouse_id = ANY({warehouses})))
    AND ({cleared} OR NOT EXISTS (
        SELECT 1 FROM postings vp JOIN accounts va ON va.id = vp.account_id JOIN parties vo ON vo.id = va.owner_id
         WHERE vp.movement_id = mv.id AND vo.sector = 'military'))"""

# A transfer (``t``): from or to a warehouse in scope and, unless cleared, carrying no military stock.
TRANSFERS = """
    ({warehouses}::bigint[] IS NULL OR t.from_warehouse_id = ANY({warehouses}) OR t.to_warehouse_id = ANY({warehouses}))
    AND ({cleared} OR NOT EXISTS (
        SELECT 1 FROM transfer_lines tl JOIN parties o ON o.id = tl.owner_id
         WHERE tl.transfer_id = t.id AND o.sector = 'military'))"""

# A reserve target (``t``, ``o`` its owner) as ``stockpile.domain.access.TargetPlace`` judges it:
# military (one military owner's stock, or the military sector's); counting every owner's stock (so
# its figures include military stock wherever there is some); and so whether its figures may be
# shown to a reader without clearance at all.
TARGET_MILITARY = "coalesce(o.sector, t.sector, '') = 'military'"
TARGET_COUNTS_EVERY_OWNER = "(t.owner_id IS NULL AND t.sector IS NULL)"
TARGET_FIGURES_HIDDEN = f"({TARGET_MILITARY} OR {TARGET_COUNTS_EVERY_OWNER})"

# A reserve target the reader may see (``stockpile.domain.access.target_visible``): its scope is the
# reader's, and — without clearance — it is not military and does not count every owner's stock at
# one warehouse (that would place a military quantity at a depot).
TARGETS = """
    ({warehouses}::bigint[] IS NULL
       OR t.scope_warehouse_id = ANY({warehouses}) OR t.scope_region_id = ANY({regions}))
    AND ({cleared} OR NOT (""" + TARGET_MILITARY + " OR (" + TARGET_COUNTS_EVERY_OWNER + """
                                AND t.scope_warehouse_id IS NOT NULL)))"""

# An alert (``a``): about a warehouse or region in scope (or national), and not military unless cleared.
ALERTS = """
    ({warehouses}::bigint[] IS NULL OR a.warehouse_id = ANY({warehouses}) OR a.region_id = ANY({regions})
     OR (a.warehouse_id IS NULL AND a.region_id IS NULL)) AND ({cleared} OR NOT a.military)"""

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

# Mobilisation potential (``stockpile.domain.access``: capacity_visible).

# A capacity (``k``, ``kp`` its party) is military when its party is, or it is held for the military.
CAPACITY_MILITARY = "(kp.sector = 'military' OR k.held_for IS NOT DISTINCT FROM 'military')"

# A capacity the reader may see: the region it delivers to (or its warehouse) in the reader's scope,
# and not military unless the reader is cleared.
CAPACITIES = """
    ({warehouses}::bigint[] IS NULL OR k.region_id = ANY({regions}) OR k.warehouse_id = ANY({warehouses}))
    AND ({cleared} OR NOT """ + CAPACITY_MILITARY + ")"

# A tasking order (``tk``, of the capacity ``k`` whose party is ``kp``): the capacity's rule, or — so
# the depot that receives it can — its destination in the reader's warehouses.
TASKINGS = """
    ({warehouses}::bigint[] IS NULL OR k.region_id = ANY({regions}) OR tk.destination_id = ANY({warehouses}))
    AND ({cleared} OR NOT """ + CAPACITY_MILITARY + ")"
# A tank gauge (``s``) in a tank where a military party holds, or held, stock of the material it
# measures: its readings would place military quantities (``stockpile.domain.access.sensor_disclosed``).
MILITARY_TANK = """(s.kind = 'tank_level' AND EXISTS (
    SELECT 1 FROM lots tl JOIN accounts ta ON ta.lot_id = tl.id AND ta.type = 'stock'
      JOIN parties tp ON tp.id = ta.owner_id
     WHERE tl.warehouse_id = s.warehouse_id AND tl.material_id = s.material_id AND tp.sector = 'military'))"""

# A sensor (``s``): at a warehouse in the reader's scope and, unless the reader is cleared, not a
# military tank's gauge (``stockpile.domain.access.sensor_visible``).
SENSORS = "({warehouses}::bigint[] IS NULL OR s.warehouse_id = ANY({warehouses})) AND ({cleared} OR NOT " \
          + MILITARY_TANK + ")"
