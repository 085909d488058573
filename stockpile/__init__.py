"""stockpile: jointly held national reserves of fuel, food and medical supplies."""

__version__ = "0.1.0"
