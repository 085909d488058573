"""A realistic demo reserve for an empty database: ``stockpile demo`` and ``stockpile serve``.

The scenario (the fictional Republic of Valtara) is data, in ``data``; ``loader`` loads it in one
transaction through the use cases the API uses, and ``history`` draws its last year of operations
with a seeded RNG.
"""

from stockpile.demo.loader import TOKEN_DAYS, DemoRefused, load_demo
from stockpile.demo.result import DemoResult

__all__ = ["TOKEN_DAYS", "DemoRefused", "DemoResult", "load_demo"]
