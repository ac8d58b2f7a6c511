"""market data and holdings

Assets, daily OHLCV prices, market caps and FX rates (shared reference data), the holdings of
each account with their quantity history, and each user's last computed net worth.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 07:17:26.833863
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worthline.kit.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("asset_type", sa.String(length=16), nullable=False),
        sa.Column("sector", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "asset_type IN ('equity', 'etf', 'fund', 'bond', 'crypto', 'commodity', 'cash', 'other')",
            name=op.f("ck_assets_asset_type_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        sa.UniqueConstraint("symbol", name=op.f("uq_assets_symbol")),
    )
    op.create_table(
        "fx_rates",
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("rate", worthline.kit.db.ExactDecimal(10), nullable=False),
        sa.CheckConstraint("base <> quote", name=op.f("ck_fx_rates_distinct_currencies")),
        sa.CheckConstraint("rate > 0", name=op.f("ck_fx_rates_rate_positive")),
        sa.PrimaryKeyConstraint("base", "quote", "rate_date", name=op.f("pk_fx_rates")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "asset_prices",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("price_date", sa.Date(), nullable=False),
        sa.Column("open", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("high", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("low", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("close", worthline.kit.db.ExactDecimal(8), nullable=False),
        sa.Column("volume", worthline.kit.db.ExactDecimal(4), nullable=True),
        sa.CheckConstraint("close > 0", name=op.f("ck_asset_prices_close_positive")),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_prices_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "price_date", name=op.f("pk_asset_prices")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "market_caps",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("cap_date", sa.Date(), nullable=False),
        sa.Column("market_cap", worthline.kit.db.ExactDecimal(2), nullable=False),
        sa.CheckConstraint("market_cap >= 0", name=op.f("ck_market_caps_market_cap_not_negative")),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_market_caps_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "cap_date", name=op.f("pk_market_caps")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "net_worth_state",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("net_worth", sa.String(length=64), nullable=False),
        sa.Column("account_count", sa.Integer(), nullable=False),
        sa.Column("computed_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_net_worth_state_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_net_worth_state")),
    )
    op.create_table(
        "holding_history",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("quantity", worthline.kit.db.ExactDecimal(8), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_holding_history_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_holding_history_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_holding_history_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "asset_id", "effective_date", name=op.f("pk_holding_history")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "holdings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("quantity", worthline.kit.db.ExactDecimal(8), nullable=False),
        sa.Column("cost_basis", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("as_of", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_holdings_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_holdings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_holdings_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holdings")),
        sa.UniqueConstraint("account_id", "asset_id", name=op.f("uq_holdings_account_id_asset_id")),
    )
    with op.batch_alter_table("holdings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holdings_asset_id"), ["asset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("holdings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holdings_asset_id"))

    op.drop_table("holdings")
    op.drop_table("holding_history")
    op.drop_table("net_worth_state")
    op.drop_table("market_caps")
    op.drop_table("asset_prices")
    op.drop_table("fx_rates")
    op.drop_table("assets")
