"""Sensors: tank gauges and cold-chain probes, their readings (partitioned by day) and hourly rollups.

Guarantees enforced here:

- A reading is identified by (sensor, at): the primary key of ``sensor_readings``, so a device that
  sends a reading again changes nothing (the ingest inserts with ``ON CONFLICT DO NOTHING``).
- A reading's value is a finite number (``sensor_readings_finite``).
- Readings are partitioned by day (``sensor_readings_partition(day)`` creates a day's partition,
  moving into it any of its rows the default partition caught); the default partition keeps a
  reading whose day has no partition yet, so none is lost. A BRIN index on ``at`` serves the scans
  by time.
- A rollup hour holds what the raw readings it replaced held: their count, minimum, maximum and
  exact sum (numeric), so the mean is the raw mean.
- Alerts gain the kinds ``cold_chain_excursion``, ``stock_variance`` and ``sensor_offline``;
  principals the role ``sensor`` (a device that may only post readings).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SENSOR_ALERT_KINDS = "'cold_chain_excursion'::text, 'stock_variance'::text, 'sensor_offline'::text"

SCHEMA = r"""
CREATE TABLE sensors (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code              text NOT NULL UNIQUE,
    warehouse_id      bigint NOT NULL REFERENCES warehouses (id),
    kind              text NOT NULL CHECK (kind IN ('temperature', 'humidity', 'tank_level')),
    storage_class     text,
    material_id       bigint REFERENCES materials (id),
    unit              text NOT NULL,
    band_min          numeric,
    band_max          numeric,
    tolerance_minutes integer NOT NULL CHECK (tolerance_minutes BETWEEN 0 AND 1440),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sensors_gauge_watches_a_material CHECK ((kind = 'tank_level') = (material_id IS NOT NULL)),
    CONSTRAINT sensors_probe_watches_a_class CHECK (kind = 'tank_level' OR storage_class IS NOT NULL),
    CONSTRAINT sensors_band_ordered CHECK (band_min IS NULL OR band_max IS NULL OR band_min <= band_max)
);
CREATE INDEX sensors_warehouse ON sensors (warehouse_id);
COMMENT ON COLUMN sensors.storage_class IS 'a probe: the storage class of its warehouse it watches';
COMMENT ON COLUMN sensors.material_id IS 'a tank gauge: the material of its warehouse it measures (readings in its unit)';
COMMENT ON COLUMN sensors.band_min IS 'a probe: the lowest allowed reading (NULL: no lower bound)';
COMMENT ON COLUMN sensors.band_max IS 'a probe: the highest allowed reading (NULL: no upper bound)';
COMMENT ON COLUMN sensors.tolerance_minutes IS 'how long a probe may read outside its band, or a gauge disagree with the book, before it is an alert';

CREATE TABLE sensor_readings (
    sensor_id bigint NOT NULL REFERENCES sensors (id),
    at        timestamptz NOT NULL,
    value     numeric NOT NULL,
    CONSTRAINT sensor_readings_finite CHECK (value NOT IN ('NaN', 'Infinity', '-Infinity')),
    PRIMARY KEY (sensor_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE sensor_readings_default PARTITION OF sensor_readings DEFAULT;
CREATE INDEX sensor_readings_at ON sensor_readings USING brin (at);
COMMENT ON TABLE sensor_readings IS 'raw readings, one partition per UTC day; kept STOCKPILE_READINGS_RETENTION_DAYS, then rolled up by hour';

CREATE TABLE sensor_readings_hourly (
    sensor_id bigint NOT NULL REFERENCES sensors (id),
    hour      timestamptz NOT NULL,
    readings  integer NOT NULL CHECK (readings > 0),
    min_value numeric NOT NULL,
    max_value numeric NOT NULL,
    sum_value numeric NOT NULL,
    PRIMARY KEY (sensor_id, hour)
);
COMMENT ON TABLE sensor_readings_hourly IS 'raw readings past their retention, one row per sensor and hour they fell in';
COMMENT ON COLUMN sensor_readings_hourly.sum_value IS 'the exact sum of the readings replaced (mean = sum_value / readings)';

CREATE FUNCTION sensor_readings_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    name text := 'sensor_readings_' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    PERFORM pg_advisory_xact_lock(5374211);  -- one partition maker at a time
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE sensor_readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('WITH caught AS (DELETE FROM sensor_readings_default WHERE at >= %L AND at < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM caught', lo, hi, name);
    EXECUTE format('ALTER TABLE sensor_readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    RETURN true;
END $$;
COMMENT ON FUNCTION sensor_readings_partition(date) IS 'create the partition of one UTC day (false: it exists), taking over the rows the default partition caught';
"""


QUOTED_KINDS = SENSOR_ALERT_KINDS.replace("'", "''")


def _rewrite_check(table: str, name: str, old: str, new: str) -> str:
    """Rewrite a list CHECK, keeping whatever values it holds besides (``old`` replaced by ``new``)."""
    return f"""DO $$
        DECLARE def text := (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = '{name}');
        BEGIN
            ALTER TABLE {table} DROP CONSTRAINT {name};
            EXECUTE 'ALTER TABLE {table} ADD CONSTRAINT {name} ' || replace(def, '{old}', '{new}');
        END $$"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)
    # the days around the upgrade; the maintain-readings job keeps a week ahead from then on
    op.execute("SELECT sensor_readings_partition(current_date + d) FROM generate_series(-1, 7) d")
    op.execute(_rewrite_check("alerts", "alerts_kind_check", "]))", f", {QUOTED_KINDS}]))"))
    op.execute(_rewrite_check("principals", "principals_roles_check", "]))", ", ''sensor''::text]))"))


def downgrade() -> None:
    op.execute("UPDATE principals SET roles = array_remove(roles, 'sensor') WHERE 'sensor' = ANY (roles)")
    op.execute(_rewrite_check("principals", "principals_roles_check", ", ''sensor''::text", ""))
    op.execute(_rewrite_check("alerts", "alerts_kind_check", f", {QUOTED_KINDS}", ""))
    op.execute("DROP FUNCTION sensor_readings_partition(date)")
    op.execute("DROP TABLE sensor_readings_hourly")
    op.execute("DROP TABLE sensor_readings")
    op.execute("DROP TABLE sensors")
