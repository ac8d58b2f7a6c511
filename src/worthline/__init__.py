"""Worthline: what your accounts and portfolios are worth, over time."""

__version__ = "0.1.0"
