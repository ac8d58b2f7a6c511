"""Market data tables (seed `portfolio_database_models.txt`): assets, daily OHLCV prices,
market caps by date, and FX rates by date.

Market data is reference data shared by every user of a deployment (a price is a fact about
the market, not about an account). Every figure is an exact decimal on both engines; a price,
a rate or a market cap is never a float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from worthline.kit.db import Base, CreatedAt, ExactDecimal, UTCDateTime, utcnow

ASSET_TYPES = ("equity", "etf", "fund", "bond", "crypto", "commodity", "cash", "other")

PRICE_SCALE = 8
"""Decimals of a price (and of a holding's quantity and cost basis)."""
RATE_SCALE = 10
"""Decimals of an FX rate."""
VOLUME_SCALE = 4
MARKET_CAP_SCALE = 2


class Asset(CreatedAt, Base):
    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint(
            "asset_type IN ({})".format(", ".join(f"'{t}'" for t in ASSET_TYPES)),
            name="asset_type_known",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    asset_type: Mapped[str] = mapped_column(String(16))
    sector: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Price(Base):
    """One asset's prices on one day (unique per asset and date: the primary key)."""

    __tablename__ = "asset_prices"
    __table_args__ = (
        CheckConstraint("close > 0", name="close_positive"),
        {"sqlite_with_rowid": False},
    )

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    price_date: Mapped[date] = mapped_column(Date, primary_key=True)
    open: Mapped[Decimal | None] = mapped_column(ExactDecimal(PRICE_SCALE))
    high: Mapped[Decimal | None] = mapped_column(ExactDecimal(PRICE_SCALE))
    low: Mapped[Decimal | None] = mapped_column(ExactDecimal(PRICE_SCALE))
    close: Mapped[Decimal] = mapped_column(ExactDecimal(PRICE_SCALE))
    volume: Mapped[Decimal | None] = mapped_column(ExactDecimal(VOLUME_SCALE))


class MarketCap(Base):
    """An asset's market capitalisation on one day (the seed's `MarketCapData`)."""

    __tablename__ = "market_caps"
    __table_args__ = (
        CheckConstraint("market_cap >= 0", name="market_cap_not_negative"),
        {"sqlite_with_rowid": False},
    )

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    cap_date: Mapped[date] = mapped_column(Date, primary_key=True)
    market_cap: Mapped[Decimal] = mapped_column(ExactDecimal(MARKET_CAP_SCALE))


class FxRate(Base):
    """`1 base = rate quote` on `rate_date`; in force until the pair's next rate."""

    __tablename__ = "fx_rates"
    __table_args__ = (
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("base <> quote", name="distinct_currencies"),
        {"sqlite_with_rowid": False},
    )

    base: Mapped[str] = mapped_column(String(3), primary_key=True)
    quote: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate_date: Mapped[date] = mapped_column(Date, primary_key=True)
    rate: Mapped[Decimal] = mapped_column(ExactDecimal(RATE_SCALE))


class FxRatesVersion(Base):
    """One row whose token changes with every FX rate upsert, in the same transaction: a
    process may keep rate tables it has read for as long as the token it read them under is
    the committed one (`repository.fx_table`)."""

    __tablename__ = "fx_rates_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32))
