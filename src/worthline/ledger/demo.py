"""A realistic household ledger for a newcomer to look at: a few years of salary, bills,
groceries on a credit card, a mortgage, interest-bearing savings and some US dollars, plus a
stocks-and-shares ISA with quarterly holdings syncs, daily prices and USD/GBP rates.

It is generated as `.goluca` journal text (deterministic: the same seed gives the same file)
and loaded through the ordinary journal import, then interest is run up to yesterday.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth.models import User
from worthline.auth.service import Auth
from worthline.kit.db import utcnow
from worthline.ledger.interest import run_interest
from worthline.ledger.journal_io import import_journal

DEMO_EMAIL = "demo@example.com"

ACCOUNTS = """\
option operating-currency GBP

{start} commodity GBP
  exponent: -2
{start} commodity USD
  exponent: -2
{start} open Asset:Bank:Current:Main GBP
  name: Everyday current account
{start} open Asset:Bank:Savings:Easy GBP
  interest-rate: 0.0425
  name: Easy-access savings
{start} open Asset:Bank:Current:USD USD
  name: Dollar account
{start} open Liability:CreditCard:Visa GBP
{start} open Asset:Property:Home GBP
  name: Home (at purchase price)
{start} open Liability:Mortgage:Home GBP
  interest-rate: 0.0399
  name: Repayment mortgage
{start} open Equity:Opening:Balances GBP
{start} open Equity:Opening:USD USD
{start} open Income:Salary:Acme GBP
{start} open Income:Freelance:USD USD
alias Current Asset:Bank:Current:Main
alias Card Liability:CreditCard:Visa
"""


def _money(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


def journal(start: date, end: date, seed: int = 2023) -> Iterator[str]:
    """Journal lines for the household, from `start` to `end` inclusive."""
    for chunk in _chunks(start, end, seed):
        yield from chunk.splitlines(keepends=True)


def _chunks(start: date, end: date, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    yield from ACCOUNTS.format(start=start).splitlines(keepends=True)

    def tx(day: date, payee: str, *moves: tuple[str, str, int, str], code: str = "") -> str:
        lines = [f"\n{day} * {payee}\n"]
        for index, (src, dst, pence, currency) in enumerate(moves):
            lines.append(f"  {'+' if index else ''}{src} -> {dst} {_money(pence)} {currency}\n")
        if code:
            lines.append(f"  code: {code}\n")
        return "".join(lines)

    yield tx(
        start,
        "Opening balances",
        ("Equity:Opening:Balances", "Current", 245_000, "GBP"),
        ("Equity:Opening:Balances", "Asset:Bank:Savings:Easy", 1_200_000, "GBP"),
        ("Equity:Opening:Balances", "Asset:Property:Home", 31_000_000, "GBP"),
        ("Liability:Mortgage:Home", "Equity:Opening:Balances", 23_500_000, "GBP"),
    )
    yield tx(
        start, "Opening dollars", ("Equity:Opening:USD", "Asset:Bank:Current:USD", 150_000, "USD")
    )

    salary = 385_000
    card = 0  # what the card owes, in pence
    day = start + timedelta(days=1)
    while day <= end:
        if day.month == 4 and day.day == 1:
            salary = salary * 103 // 100  # a yearly rise
        if day.day == 1:
            yield tx(
                day, "Mortgage payment", ("Current", "Liability:Mortgage:Home", 135_000, "GBP")
            )
            yield tx(day, "Council tax", ("Current", "Expense:Housing:CouncilTax", 18_000, "GBP"))
        if day.day == 5 and card:
            yield tx(day, "Credit card repayment", ("Current", "Card", card, "GBP"))
            card = 0
        if day.day == 8:
            winter = day.month in (11, 12, 1, 2, 3)
            energy = rng.randint(14_000, 19_000) if winter else rng.randint(7_000, 10_500)
            yield tx(
                day,
                "Energy and water",
                ("Current", "Expense:Utilities:Energy", energy, "GBP"),
                ("Current", "Expense:Utilities:Water", 3_850, "GBP"),
            )
        if day.day == 12:
            yield tx(
                day,
                "Streaming and phone",
                ("Card", "Expense:Subscriptions:Media", 1_599, "GBP"),
                ("Current", "Expense:Subscriptions:Phone", 2_200, "GBP"),
            )
            card += 1_599
        if day.day == 25:
            yield tx(day, "Salary", ("Income:Salary:Acme", "Current", salary, "GBP"))
        if day.day == 26:
            yield tx(day, "Monthly saving", ("Current", "Asset:Bank:Savings:Easy", 40_000, "GBP"))
        if day.weekday() == 5:
            spend = rng.randint(6_500, 13_500)
            yield tx(day, "Weekly groceries", ("Card", "Expense:Food:Groceries", spend, "GBP"))
            card += spend
        if rng.random() < 0.12:
            spend = rng.randint(1_800, 7_500)
            yield tx(day, "Dinner out", ("Card", "Expense:Food:Dining", spend, "GBP"))
            card += spend
        if day.weekday() < 5 and rng.random() < 0.3:
            yield tx(
                day,
                "Train fare",
                ("Current", "Expense:Transport:Rail", rng.randint(450, 2_400), "GBP"),
            )
        if day.day == 15 and day.month % 3 == 0:
            yield tx(
                day,
                "Freelance invoice",
                (
                    "Income:Freelance:USD",
                    "Asset:Bank:Current:USD",
                    rng.randint(90_000, 160_000),
                    "USD",
                ),
            )
        if day.month == 8 and day.day in (10, 12, 15):
            yield tx(
                day,
                "Holiday in the US",
                (
                    "Asset:Bank:Current:USD",
                    "Expense:Travel:USD",
                    rng.randint(15_000, 45_000),
                    "USD",
                ),
            )
        day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    password: str
    user_id: uuid.UUID
    movements: int


async def database_is_empty(session: AsyncSession) -> bool:
    return (await session.scalar(select(func.count()).select_from(User))) == 0


async def load_demo(session: AsyncSession, auth: Auth, years: int = 4) -> DemoUser:
    """Create the demo user with a fresh random password and load its ledger."""
    now = utcnow()
    end = now.date() - timedelta(days=1)
    start = date(end.year - years + 1, 1, 1)
    password = "demo-" + secrets.token_urlsafe(12)
    user = await auth.register(session, DEMO_EMAIL, password, "GBP", now)
    result = await import_journal(session, user.id, journal(start, end))
    await run_interest(session, user.id, start, end)
    # Investments and market data (daily prices and USD/GBP rates) live in the portfolio
    # domain, which builds on the ledger: imported here, where the demo composes both.
    from worthline.portfolio.demo import load_investments

    await load_investments(session, user.id, start, end)
    return DemoUser(DEMO_EMAIL, password, user.id, result.movements_recorded)
