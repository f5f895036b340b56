"""prognos: predictive maintenance — Remaining-Useful-Life models you can trust and serve."""

__all__ = ["__version__"]

__version__ = "0.1.0"
