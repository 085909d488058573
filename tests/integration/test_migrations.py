"""The schema is made by the migrations alone, once, however many replicas start together; and an
installed wheel carries them (no source tree needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import asyncpg

from stockpile.store.engine import asyncpg_dsn, head_revision

ROOT = Path(__file__).resolve().parents[2]


def _upgrade(python: str, url: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([python, "-m", "stockpile", "db", "upgrade"], cwd=cwd, text=True,
                            env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def _revision_and_tables(url: str) -> tuple[list[str], int]:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        versions = [r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        return versions, tables
    finally:
        await conn.close()


async def test_replicas_starting_together_migrate_once(make_database, tmp_path):
    url = make_database(migrate=False)
    replicas = [_upgrade(sys.executable, url, tmp_path) for _ in range(4)]
    said = [p.communicate(timeout=300)[0] for p in replicas]
    assert [p.returncode for p in replicas] == [0, 0, 0, 0], "\n".join(said)
    versions, tables = await _revision_and_tables(url)
    assert versions == [head_revision()] and tables > 20


async def test_an_installed_wheel_migrates_a_database_without_the_source_tree(make_database, tmp_path):
    """Build the wheel, install it (without dependencies) into a fresh environment that borrows this
    one's libraries, and run ``stockpile db upgrade`` from a directory with no migrations in it."""
    source = tmp_path / "source"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for folder in ("stockpile", "migrations"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("stockpile-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The dependencies come from this environment's site-packages, added as a plain path: its .pth
    # files (this checkout's editable install among them) are not processed, so stockpile is the wheel's.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([python, "-c", "import stockpile.store.engine as e; print(e.__file__); print(e.MIGRATIONS)"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert where.returncode == 0 and all(line.startswith(site) for line in where.stdout.split()), where.stdout + where.stderr

    url = make_database(migrate=False)
    upgrade = _upgrade(python, url, tmp_path)
    said = upgrade.communicate(timeout=300)[0]
    assert upgrade.returncode == 0 and head_revision() in said, said
    versions, _ = await _revision_and_tables(url)
    assert versions == [head_revision()]
