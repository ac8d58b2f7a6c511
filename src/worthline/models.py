"""Imports every domain's models so that `Base.metadata` is complete (Alembic, tests)."""


def load_all() -> None:
    import worthline.auth.models
    import worthline.eventstream.models
    import worthline.ledger.models
    import worthline.market.models
    import worthline.portfolio.models
    import worthline.snapshots.models  # noqa: F401
