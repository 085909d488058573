"""The migrations/ folder stays at the top of the repository (the project's layout) and ships in the
wheel as the package ``stockpile.migrations``, so an installed service finds its schema without a
source tree. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["stockpile", "stockpile.*"]), "stockpile.migrations", "stockpile.migrations.versions"],
    package_dir={"stockpile.migrations": "migrations"},
    package_data={"stockpile.migrations": ["script.py.mako"]},
)
