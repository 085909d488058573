"""Foundation: master data, principals and tokens, lots, the double-entry ledger, transfers,
idempotency keys.

The ledger's guarantees are enforced here, in PostgreSQL, not only in the application:

1. ``accounts.balance >= 0`` and ``0 <= reserved <= balance`` (CHECK constraints).
2. The postings of a movement sum to zero per material (deferred constraint trigger
   ``movement_balanced``, checked at commit).
3. A stored balance equals the sum of its postings: balances are changed only by the
   ``postings_apply`` trigger; any other write to ``accounts.balance`` is refused, and an account
   is born with a zero balance.
4. Movements and postings are append-only (UPDATE, DELETE and TRUNCATE are refused); a movement is
   reversed at most once (unique ``reverses_id``).
5. One idempotency key per principal (primary key), so duplicates serialise on the index.

Revision ID: 0001
Revises:
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE parties (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    name        text NOT NULL,
    sector      text NOT NULL CHECK (sector IN ('military', 'civilian', 'enterprise')),
    parent_id   bigint REFERENCES parties (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id)
);

CREATE TABLE regions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    name        text NOT NULL,
    parent_id   bigint REFERENCES regions (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id)
);

CREATE TABLE warehouses (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    name        text NOT NULL,
    operator_id bigint NOT NULL REFERENCES parties (id),
    region_id   bigint NOT NULL REFERENCES regions (id),
    kind        text NOT NULL CHECK (kind IN ('military', 'civilian', 'joint')),
    latitude    numeric(9, 6) NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   numeric(9, 6) NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'lost')),
    capacity    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX warehouses_region ON warehouses (region_id);
COMMENT ON COLUMN warehouses.operator_id IS 'the custodian: the party that runs the warehouse (custody is not title)';
COMMENT ON COLUMN warehouses.capacity IS 'capacity per storage class, in that class''s smallest units';

CREATE TABLE materials (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    name            text NOT NULL,
    category        text NOT NULL CHECK (category IN ('fuel', 'food', 'medical')),
    unit            text NOT NULL CHECK (length(unit) BETWEEN 1 AND 16),
    decimals        smallint NOT NULL CHECK (decimals BETWEEN 0 AND 3),
    shelf_life_days integer CHECK (shelf_life_days > 0),
    storage_class   text NOT NULL,
    substitution_group text,
    daily_consumption_per_person numeric(18, 6) CHECK (daily_consumption_per_person > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN materials.decimals IS 'quantities of this material are stored as integers of 10^-decimals units';

CREATE TABLE principals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    roles       text[] NOT NULL DEFAULT '{}'
                CHECK (roles <@ ARRAY['operator', 'planner', 'commander', 'auditor', 'admin', 'metrics']),
    clearance   text CHECK (clearance IN ('military')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
COMMENT ON COLUMN principals.clearance IS 'military: may see military-owned stock in detail';

CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal_id bigint NOT NULL REFERENCES principals (id),
    token_hash  bytea NOT NULL UNIQUE,
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
COMMENT ON COLUMN api_tokens.token_hash IS 'SHA-256 of the bearer token; the token itself is never stored';

CREATE TABLE principal_grants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal_id bigint NOT NULL REFERENCES principals (id),
    warehouse_id bigint REFERENCES warehouses (id),
    region_id   bigint REFERENCES regions (id),
    CHECK ((warehouse_id IS NULL) <> (region_id IS NULL))
);
CREATE UNIQUE INDEX principal_grants_unique ON principal_grants (principal_id, coalesce(warehouse_id, 0), coalesce(region_id, 0));

CREATE TABLE lots (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    warehouse_id    bigint NOT NULL REFERENCES warehouses (id),
    material_id     bigint NOT NULL REFERENCES materials (id),
    code            text NOT NULL CHECK (length(code) BETWEEN 1 AND 100),
    manufactured_on date,
    expires_on      date,
    status          text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'quarantine', 'recalled')),
    origin_lot_id   uuid REFERENCES lots (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (warehouse_id, material_id, code),
    CHECK (expires_on IS NULL OR manufactured_on IS NULL OR expires_on >= manufactured_on)
);
CREATE INDEX lots_material_expiry ON lots (material_id, expires_on);
COMMENT ON COLUMN lots.origin_lot_id IS 'the lot this one was transferred from (same code and expiry)';
COMMENT ON COLUMN lots.expires_on IS 'the lot is expired from this date on; NULL for non-perishables';

CREATE TABLE lot_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id      uuid NOT NULL REFERENCES lots (id),
    kind        text NOT NULL CHECK (kind IN ('status', 'shelf_life')),
    from_value  text,
    to_value    text NOT NULL,
    reason      text,
    principal_id bigint REFERENCES principals (id),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lot_events_lot ON lot_events (lot_id, id);

CREATE TABLE transfers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    from_warehouse_id bigint NOT NULL REFERENCES warehouses (id),
    to_warehouse_id   bigint NOT NULL REFERENCES warehouses (id),
    state             text NOT NULL DEFAULT 'in_transit' CHECK (state IN ('in_transit', 'received')),
    expected_at       timestamptz,
    dispatched_at     timestamptz NOT NULL DEFAULT now(),
    received_at       timestamptz,
    principal_id      bigint REFERENCES principals (id),
    CHECK (from_warehouse_id <> to_warehouse_id)
);
CREATE INDEX transfers_in_transit ON transfers (expected_at) WHERE state = 'in_transit';

CREATE TABLE accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('stock', 'transit')),
    lot_id      uuid NOT NULL REFERENCES lots (id),
    owner_id    bigint NOT NULL REFERENCES parties (id),
    material_id bigint NOT NULL REFERENCES materials (id),
    transfer_id uuid REFERENCES transfers (id),
    balance     bigint NOT NULL DEFAULT 0,
    reserved    bigint NOT NULL DEFAULT 0,
    CONSTRAINT balance_not_negative CHECK (balance >= 0),
    CONSTRAINT reserved_within_balance CHECK (reserved >= 0 AND reserved <= balance),
    CONSTRAINT transit_belongs_to_transfer CHECK ((type = 'transit') = (transfer_id IS NOT NULL))
);
CREATE UNIQUE INDEX accounts_stock_position ON accounts (lot_id, owner_id) WHERE type = 'stock';
CREATE UNIQUE INDEX accounts_transit_position ON accounts (transfer_id, lot_id, owner_id) WHERE type = 'transit';
CREATE INDEX accounts_owner ON accounts (owner_id);
COMMENT ON TABLE accounts IS 'stock positions (lot x owner) and transit positions (transfer x lot x owner); external accounts (supply, consumption, loss, adjustment) have no row and no stored balance';
COMMENT ON COLUMN accounts.balance IS 'sum of this account''s postings, in the material''s smallest unit; maintained only by the postings_apply trigger';
COMMENT ON COLUMN accounts.reserved IS 'quantity promised to approved allocation plans, not yet dispatched';

CREATE TABLE transfer_lines (
    transfer_id        uuid NOT NULL REFERENCES transfers (id),
    line_no            integer NOT NULL,
    source_lot_id      uuid NOT NULL REFERENCES lots (id),
    owner_id           bigint NOT NULL REFERENCES parties (id),
    quantity           bigint NOT NULL CHECK (quantity > 0),
    received           bigint CHECK (received >= 0 AND received <= quantity),
    transit_account_id bigint NOT NULL REFERENCES accounts (id),
    destination_lot_id uuid REFERENCES lots (id),
    PRIMARY KEY (transfer_id, line_no)
);

CREATE TABLE movements (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('receipt', 'issue', 'transfer_dispatch', 'transfer_receipt',
                     'adjustment', 'write_off', 'ownership_transfer', 'rotation_out', 'rotation_in', 'reversal')),
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    principal_id bigint REFERENCES principals (id),
    reason       text,
    note         text,
    reverses_id  uuid UNIQUE REFERENCES movements (id),
    transfer_id  uuid REFERENCES transfers (id),
    CONSTRAINT reversal_points_at_its_movement CHECK ((kind = 'reversal') = (reverses_id IS NOT NULL))
);
CREATE INDEX movements_occurred ON movements (occurred_at);
CREATE INDEX movements_transfer ON movements (transfer_id) WHERE transfer_id IS NOT NULL;
COMMENT ON COLUMN movements.reverses_id IS 'the movement this reversal undoes; unique, so a movement is reversed at most once';

CREATE TABLE postings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    movement_id uuid NOT NULL REFERENCES movements (id),
    account_id  bigint REFERENCES accounts (id),
    external    text CHECK (external IN ('supply', 'consumption', 'loss', 'adjustment')),
    material_id bigint NOT NULL REFERENCES materials (id),
    delta       bigint NOT NULL CHECK (delta <> 0),
    CONSTRAINT posting_has_one_account CHECK ((account_id IS NULL) <> (external IS NULL))
);
CREATE INDEX postings_movement ON postings (movement_id);
CREATE INDEX postings_account ON postings (account_id) WHERE account_id IS NOT NULL;
COMMENT ON COLUMN postings.external IS 'external account of the material (no stored balance): supply, consumption, loss, adjustment';

CREATE TABLE idempotency_keys (
    principal_id bigint NOT NULL REFERENCES principals (id),
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status_code  smallint,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal_id, key)
);
COMMENT ON TABLE idempotency_keys IS 'one row per (principal, Idempotency-Key), written in the same transaction as the ledger change it guards';

-- Guarantee 3: balances change only through postings.
CREATE FUNCTION postings_apply_to_balances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts a
       SET balance = a.balance + s.delta
      FROM (SELECT account_id, sum(delta) AS delta
              FROM new_postings
             WHERE account_id IS NOT NULL
             GROUP BY account_id) s
     WHERE a.id = s.account_id;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_apply AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_apply_to_balances();

CREATE FUNCTION accounts_guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.balance <> 0 THEN
        RAISE EXCEPTION 'an account is opened with a zero balance; stock arrives by postings'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'accounts.balance changes only through postings'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_guard_balance BEFORE INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard_balance();

-- Guarantee 2: balanced per material, checked at commit.
CREATE FUNCTION movement_is_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT material_id, sum(delta) AS total INTO bad
      FROM postings WHERE movement_id = NEW.id
     GROUP BY material_id HAVING sum(delta) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'movement % is unbalanced: postings of material % sum to %', NEW.id, bad.material_id, bad.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'movement_balanced';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER movement_balanced AFTER INSERT ON movements
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION movement_is_balanced();

-- Guarantee 4: the ledger is append-only.
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: correct a movement with a reversal', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER movements_append_only BEFORE UPDATE OR DELETE ON movements
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER movements_no_truncate BEFORE TRUNCATE ON movements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
"""

TABLES = [
    "idempotency_keys", "postings", "movements", "transfer_lines", "accounts", "transfers",
    "lot_events", "lots", "principal_grants", "api_tokens", "principals", "materials",
    "warehouses", "regions", "parties",
]


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table} CASCADE")
    for fn in ("postings_apply_to_balances", "accounts_guard_balance", "movement_is_balanced",
               "ledger_is_append_only"):
        op.execute(f"DROP FUNCTION {fn}()")
