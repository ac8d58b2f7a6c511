"""Market data: assets, daily prices, market caps and FX rates (shared reference data)."""
