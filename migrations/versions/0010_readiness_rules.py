"""Readiness declarations (per region, two-person rule for wartime), allocation rules as versioned
data seeded with the defaults, and the obligations that draws across owners create.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE readiness_declarations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    region_id       bigint NOT NULL REFERENCES regions (id),
    level           text NOT NULL CHECK (level IN ('peacetime', 'emergency', 'wartime')),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    state           text NOT NULL CHECK (state IN ('pending_confirmation', 'effective', 'superseded', 'withdrawn')),
    declared_by     bigint NOT NULL REFERENCES principals (id),
    declared_at     timestamptz NOT NULL DEFAULT now(),
    confirmed_by    bigint REFERENCES principals (id),
    confirmed_at    timestamptz,
    effective_at    timestamptz,
    ends_at         timestamptz,
    ended_at        timestamptz,
    CHECK (confirmed_by IS NULL OR confirmed_by <> declared_by),
    CHECK (state <> 'effective' OR effective_at IS NOT NULL)
);
COMMENT ON COLUMN readiness_declarations.state IS 'pending_confirmation: a wartime declaration waiting for a second commander; superseded: a later declaration on the region replaced it';
COMMENT ON COLUMN readiness_declarations.ends_at IS 'planned end: after it the declaration no longer counts';
CREATE UNIQUE INDEX readiness_one_effective ON readiness_declarations (region_id) WHERE state = 'effective';

CREATE TABLE allocation_rule_versions (
    version     integer PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint REFERENCES principals (id),
    note        text NOT NULL
);
COMMENT ON TABLE allocation_rule_versions IS 'each change of the rule table opens a version; a plan records the version it used';

CREATE TABLE allocation_rules (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code              text NOT NULL,
    valid_from        integer NOT NULL REFERENCES allocation_rule_versions (version),
    valid_to          integer REFERENCES allocation_rule_versions (version),
    level             text NOT NULL CHECK (level IN ('peacetime', 'emergency', 'wartime')),
    category          text CHECK (category IN ('fuel', 'food', 'medical')),
    requester_sector  text CHECK (requester_sector IN ('military', 'civilian', 'enterprise')),
    owner_sector      text CHECK (owner_sector IN ('military', 'civilian', 'enterprise')),
    allowed           boolean NOT NULL,
    floor_ratio       numeric(6, 4) CHECK (floor_ratio >= 0 AND floor_ratio <= 1),
    preference_cost   integer NOT NULL DEFAULT 0 CHECK (preference_cost BETWEEN 0 AND 1000000),
    approval_required boolean NOT NULL DEFAULT false,
    obligation        text CHECK (obligation IN ('loan', 'requisition')),
    note              text NOT NULL DEFAULT '',
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
COMMENT ON COLUMN allocation_rules.valid_to IS 'the version that replaced or removed this rule; NULL while it is in force';
COMMENT ON COLUMN allocation_rules.floor_ratio IS 'share of the reserve target kept protected under this rule; NULL = the target''s own floor_ratio';
COMMENT ON COLUMN allocation_rules.obligation IS 'loan: repaid in kind; requisition: compensated; NULL: no obligation';
CREATE UNIQUE INDEX allocation_rules_current ON allocation_rules (code) WHERE valid_to IS NULL;

CREATE TABLE obligations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text NOT NULL CHECK (kind IN ('loan', 'requisition')),
    rule_code        text NOT NULL,
    rule_version     integer NOT NULL REFERENCES allocation_rule_versions (version),
    movement_id      uuid NOT NULL REFERENCES movements (id),
    lot_id           uuid NOT NULL REFERENCES lots (id),
    material_id      bigint NOT NULL REFERENCES materials (id),
    creditor_id      bigint NOT NULL REFERENCES parties (id),
    debtor_id        bigint NOT NULL REFERENCES parties (id),
    quantity         bigint NOT NULL CHECK (quantity > 0),
    settled_quantity bigint NOT NULL DEFAULT 0 CHECK (settled_quantity >= 0 AND settled_quantity <= quantity),
    created_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz
);
COMMENT ON TABLE obligations IS 'stock that crossed owners under a rule: the debtor owes the creditor (in kind for a loan, compensation for a requisition)';
COMMENT ON COLUMN obligations.movement_id IS 'the ownership_transfer that moved the title';
CREATE INDEX obligations_open ON obligations (creditor_id) WHERE settled_quantity < quantity;

CREATE TABLE obligation_settlements (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    obligation_id  uuid NOT NULL REFERENCES obligations (id),
    movement_id    uuid REFERENCES movements (id),
    quantity       bigint NOT NULL CHECK (quantity > 0),
    note           text NOT NULL DEFAULT '',
    principal_id   bigint REFERENCES principals (id),
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN obligation_settlements.movement_id IS 'the movement that repaid a loan in kind (stock credited to the creditor); NULL for a compensated requisition';
CREATE UNIQUE INDEX obligation_settlements_movement ON obligation_settlements (movement_id) WHERE movement_id IS NOT NULL;
"""


def upgrade() -> None:
    from stockpile.domain.rules import DEFAULT_RULES

    for statement in split_sql(SCHEMA):
        op.execute(statement)
    op.execute("INSERT INTO allocation_rule_versions (version, note) VALUES (1, 'default rules')")
    bind = op.get_bind()
    from sqlalchemy import text

    for r in DEFAULT_RULES:
        bind.execute(text(
            "INSERT INTO allocation_rules (code, valid_from, level, category, requester_sector, owner_sector, allowed,"
            " floor_ratio, preference_cost, approval_required, obligation, note) VALUES (:code, 1, :level, :category,"
            " :requester_sector, :owner_sector, :allowed, :floor_ratio, :preference_cost, :approval_required,"
            " :obligation, :note)"), {
            "code": r.code, "level": r.level, "category": r.category, "requester_sector": r.requester_sector,
            "owner_sector": r.owner_sector, "allowed": r.allowed, "floor_ratio": r.floor_ratio,
            "preference_cost": r.preference_cost, "approval_required": r.approval_required,
            "obligation": r.obligation, "note": r.note})


def downgrade() -> None:
    for table in ("obligation_settlements", "obligations", "allocation_rules", "allocation_rule_versions",
                  "readiness_declarations"):
        op.execute(f"DROP TABLE {table}")
