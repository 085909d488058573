"""Allocation: requests, plans with their lines and per-request outcome, and drills.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE allocation_requests (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    requester_id       bigint NOT NULL REFERENCES parties (id),
    destination_id     bigint NOT NULL REFERENCES warehouses (id),
    material_id        bigint REFERENCES materials (id),
    substitution_group text,
    category           text NOT NULL CHECK (category IN ('fuel', 'food', 'medical')),
    decimals           smallint NOT NULL,
    quantity           bigint NOT NULL CHECK (quantity > 0),
    priority           text NOT NULL CHECK (priority IN ('flash', 'immediate', 'priority', 'routine')),
    needed_by          date NOT NULL,
    purpose            text NOT NULL DEFAULT '',
    state              text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'allocated', 'cancelled')),
    principal_id       bigint REFERENCES principals (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((material_id IS NULL) <> (substitution_group IS NULL))
);
COMMENT ON COLUMN allocation_requests.state IS 'pending: waiting for a plan; allocated: an approved plan holds stock for it (dispatch and receipt show on its lines)';
CREATE INDEX allocation_requests_pending ON allocation_requests (priority, needed_by) WHERE state = 'pending';

CREATE TABLE allocation_plans (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    state           text NOT NULL DEFAULT 'proposed'
                    CHECK (state IN ('proposed', 'approved', 'dispatched', 'cancelled', 'expired')),
    region_id       bigint REFERENCES regions (id),
    rule_version    integer NOT NULL REFERENCES allocation_rule_versions (version),
    levels          jsonb NOT NULL,
    objective       bigint NOT NULL,
    build_ms        double precision NOT NULL,
    solve_ms        double precision NOT NULL,
    arcs            integer NOT NULL,
    created_by      bigint REFERENCES principals (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    approved_by     bigint REFERENCES principals (id),
    approved_at     timestamptz,
    reserved_until  timestamptz,
    dispatched_at   timestamptz,
    ended_at        timestamptz,
    end_reason      text
);
COMMENT ON COLUMN allocation_plans.levels IS 'the effective readiness level of each destination region the plan was solved under';
COMMENT ON COLUMN allocation_plans.reserved_until IS 'when the reservations of an approved, undispatched plan lapse (job expire-reservations)';
CREATE INDEX allocation_plans_approved ON allocation_plans (reserved_until) WHERE state = 'approved';

CREATE TABLE plan_requests (
    plan_id     uuid NOT NULL REFERENCES allocation_plans (id),
    request_id  uuid NOT NULL REFERENCES allocation_requests (id),
    requested   bigint NOT NULL,
    planned     bigint NOT NULL CHECK (planned >= 0 AND planned <= requested),
    reasons     text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (plan_id, request_id)
);

CREATE TABLE plan_lines (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id       uuid NOT NULL REFERENCES allocation_plans (id),
    request_id    uuid NOT NULL REFERENCES allocation_requests (id),
    account_id    bigint NOT NULL REFERENCES accounts (id),
    lot_id        uuid NOT NULL REFERENCES lots (id),
    owner_id      bigint NOT NULL REFERENCES parties (id),
    warehouse_id  bigint NOT NULL REFERENCES warehouses (id),
    quantity      bigint NOT NULL CHECK (quantity > 0),
    distance_km   numeric(9, 1) NOT NULL,
    rule_code     text NOT NULL,
    obligation    text CHECK (obligation IN ('loan', 'requisition')),
    transfer_id   uuid REFERENCES transfers (id),
    obligation_id uuid REFERENCES obligations (id)
);
COMMENT ON COLUMN plan_lines.transfer_id IS 'the transfer that carried the line (set at dispatch); its receipt closes the line';
CREATE INDEX plan_lines_plan ON plan_lines (plan_id);
CREATE INDEX plan_lines_transfer ON plan_lines (transfer_id) WHERE transfer_id IS NOT NULL;

CREATE TABLE drills (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL DEFAULT '',
    scenario    jsonb NOT NULL,
    report      jsonb NOT NULL,
    created_by  bigint REFERENCES principals (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for table in ("drills", "plan_lines", "plan_requests", "allocation_plans", "allocation_requests"):
        op.execute(f"DROP TABLE {table}")
