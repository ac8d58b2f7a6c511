"""`worthline prices import` and `worthline fx import`: market data from CSV files.

Each import streams its file (any size) and checks every row with the API's rules (the same
schemas and service checks). Rows are stored in batches of a few thousand, all in one
transaction: a bad row anywhere is reported with its line number and nothing is stored. A
price import reads its file twice: first for the symbols alone, to lock every asset it names
at once, in id order, before it writes any price.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar

import typer

from worthline.kit.config import Settings

if TYPE_CHECKING:  # the rest is imported when a command runs: `worthline` starts fast
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncSession

    from worthline.market.models import Asset
    from worthline.market.service import FxRateIn, InvalidMarketData, PriceIn

prices_app = typer.Typer(help="Asset prices (market data).", no_args_is_help=True)
fx_app = typer.Typer(help="FX rates (market data).", no_args_is_help=True)

BATCH_ROWS = 5_000
PRICE_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
PRICE_REQUIRED = ("symbol", "date", "close")
FX_COLUMNS = ("date", "base", "quote", "rate")

M = TypeVar("M", bound="BaseModel")
Row = tuple[int, dict[str, str]]
"""A CSV line number and the row's values by column name (stripped; empty ones left out)."""


class CsvProblem(Exception):
    """A row (or the header) that cannot be imported; nothing is stored."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def read_rows(handle: TextIO, columns: tuple[str, ...], required: tuple[str, ...]) -> Iterator[Row]:
    """The rows of a CSV file whose first line names its columns (in any order)."""
    reader = csv.reader(handle)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not header:
            raise CsvProblem(1, f"a header line is required: {','.join(columns)}")
        unknown = [name for name in header if name not in columns]
        missing = [name for name in required if name not in header]
        if unknown or missing or len(set(header)) != len(header):
            raise CsvProblem(
                1,
                f"the header must name the columns {','.join(columns)} "
                f"({', '.join(required)} required), each once; found {','.join(header)}",
            )
        for values in reader:
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(values) != len(header):
                raise CsvProblem(
                    reader.line_num, f"{len(values)} fields where the header has {len(header)}"
                )
            yield (
                reader.line_num,
                {name: v.strip() for name, v in zip(header, values, strict=True) if v.strip()},
            )
    except csv.Error as exc:
        raise CsvProblem(reader.line_num, f"not valid CSV: {exc}") from exc


class CsvRows:
    """The rows of an open CSV file (`read_rows`), from its first line each time they are
    iterated: a price import reads them twice."""

    def __init__(self, handle: TextIO, columns: tuple[str, ...], required: tuple[str, ...]) -> None:
        self.handle, self.columns, self.required = handle, columns, required

    def __iter__(self) -> Iterator[Row]:
        self.handle.seek(0)
        return read_rows(self.handle, self.columns, self.required)


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse(model: type[M], line: int, values: dict[str, Any]) -> M:
    from pydantic import ValidationError

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise CsvProblem(line, f"{field}: {message}") from exc


def _at_line(exc: InvalidMarketData, lines: list[int]) -> CsvProblem:
    """The service's error for row `i` of a batch (`loc` body, rows, i, field) at its line."""
    loc = exc.extra["errors"][0]["loc"]
    field = f"{loc[3]}: " if len(loc) > 3 else ""
    return CsvProblem(lines[loc[2]], f"{field}{exc.detail}")


async def _lock_named_assets(session: AsyncSession, rows: Iterable[Row]) -> dict[str, Asset]:
    """The existing assets `rows` name, by symbol, each locked exclusively, all in one
    statement and in id order (`repository.lock_assets`): so two imports naming the same
    assets in different orders never wait on each other crosswise. Reads up to the first line
    that cannot be read, if any: the import reports that line when its batch comes, so a bad
    row in an earlier batch is still the one reported."""
    from worthline.market import repository as repo

    symbols: set[str] = set()
    with contextlib.suppress(CsvProblem):
        for _, values in rows:
            symbols.add(values.get("symbol", ""))
    named = sorted(symbols)
    assets: dict[str, Asset] = {}
    for start in range(0, len(named), repo.CHUNK):  # inside the bound-parameter limits
        assets.update(await repo.assets_by_symbol(session, named[start : start + repo.CHUNK]))
    ids = [asset.id for asset in assets.values()]
    await repo.lock_assets(session, ids, exclusive=ids)
    return assets


async def import_prices(
    session: AsyncSession, rows: Iterable[Row], progress: Callable[[int], None] = lambda n: None
) -> tuple[int, int]:
    """Upsert every price row (symbol, date, open, high, low, close, volume) of an existing
    asset; returns (rows, assets). Raises CsvProblem at the first bad row.

    `rows` is read twice, so it must start again when iterated again (a list, `CsvRows`; an
    iterator is refused): first for the symbols, whose assets are all locked before any price
    is written (`_lock_named_assets`), then to check and write each row."""
    from worthline.market import schemas, service
    from worthline.market.service import InvalidMarketData

    if iter(rows) is rows:
        raise TypeError("import_prices reads its rows twice: give a list or CsvRows")
    assets = await _lock_named_assets(session, rows)
    seen: dict[tuple[int, date], int] = {}
    imported: dict[int, date] = {}  # asset → the earliest price date written
    total = 0
    for batch in _batches(rows, BATCH_ROWS):
        groups: dict[int, tuple[Asset, list[int], list[PriceIn]]] = {}
        for line, values in batch:
            symbol = values.pop("symbol", "")
            asset = assets.get(symbol)
            if not symbol:
                raise CsvProblem(line, "symbol: the symbol is empty")
            if asset is None:
                raise CsvProblem(line, f"unknown symbol {symbol!r}: create the asset first")
            price = _parse(schemas.PriceIn, line, values)
            if (key := (asset.id, price.date)) in seen:
                raise CsvProblem(line, f"{symbol} {price.date} is already on line {seen[key]}")
            seen[key] = line
            _, lines, prices = groups.setdefault(asset.id, (asset, [], []))
            lines.append(line)
            prices.append(
                service.PriceIn(
                    price.date, price.close, price.open, price.high, price.low, price.volume
                )
            )
        for asset, lines, prices in groups.values():
            try:
                total += await service.upsert_prices(session, asset, prices, locked=True)
            except InvalidMarketData as exc:
                raise _at_line(exc, lines) from exc
            earliest = min(p.day for p in prices)
            imported[asset.id] = min(imported.get(asset.id, earliest), earliest)
        progress(total)
    from worthline.portfolio.networth import market_moved

    await market_moved(session, prices=imported)
    return total, len(imported)


async def import_fx_rates(
    session: AsyncSession, rows: Iterable[Row], progress: Callable[[int], None] = lambda n: None
) -> int:
    """Upsert every FX rate row (date, base, quote, rate); returns the rows stored. Raises
    CsvProblem at the first bad row."""
    from worthline.market import schemas, service
    from worthline.market.service import InvalidMarketData

    seen: dict[tuple[str, str, date], int] = {}
    total = 0
    for batch in _batches(rows, BATCH_ROWS):
        lines: list[int] = []
        rates: list[FxRateIn] = []
        for line, values in batch:
            rate = _parse(schemas.FxRateIn, line, values)
            if (key := (rate.base, rate.quote, rate.date)) in seen:
                raise CsvProblem(
                    line, f"{rate.base}/{rate.quote} {rate.date} is already on line {seen[key]}"
                )
            seen[key] = line
            lines.append(line)
            rates.append(service.FxRateIn(rate.date, rate.base, rate.quote, rate.rate))
        try:
            total += await service.upsert_fx_rates(session, rates)
        except InvalidMarketData as exc:
            raise _at_line(exc, lines) from exc
        progress(total)
    from worthline.portfolio.networth import market_moved

    await market_moved(session, fx=total > 0)
    return total


def _run_import(
    path: Path,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    work: Callable[[AsyncSession, Iterable[Row], Callable[[int], None]], Any],
) -> Any:
    """Stream `path` through `work` inside one unit of work, with a progress bar; on a bad
    row print it as `file:line: message` and exit 1 (the transaction is rolled back)."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from worthline.cli import console
    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work

    size = path.stat().st_size

    async def run() -> Any:
        ctx = AppContext.build(Settings())
        try:
            with (
                Progress(
                    TextColumn("[bold]importing"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"),
                    TextColumn("{task.fields[rows]:,} rows"),
                    TimeRemainingColumn(),
                    console=console,
                ) as progress,
                path.open(encoding="utf-8-sig", newline="") as handle,
            ):
                task = progress.add_task("import", total=size, rows=0)

                def stored(rows: int) -> None:
                    progress.update(task, completed=handle.buffer.tell(), rows=rows)

                async with unit_of_work(ctx.db) as session:
                    result = await work(session, CsvRows(handle, columns, required), stored)
                progress.update(task, completed=size)
            return result
        finally:
            await ctx.close()

    try:
        return asyncio.run(run())
    except CsvProblem as exc:
        console.print(f"[red]{escape(f'{path}:{exc.line}: {exc.message}')}[/]", highlight=False)
        console.print("Nothing was stored.")
        raise typer.Exit(1) from exc
    except UnicodeDecodeError as exc:
        console.print(f"[red]{escape(f'{path} is not UTF-8 text: {exc}')}[/]", highlight=False)
        console.print("Nothing was stored.")
        raise typer.Exit(1) from exc


CsvFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A CSV file")
]


@prices_app.command("import")
def prices_import(path: CsvFile) -> None:
    """Import daily prices from a CSV file with the header symbol,date,open,high,low,close,volume
    (open, high, low and volume may be empty). Each symbol must be an existing asset; a date
    already stored for it is replaced. All or nothing, with a progress bar."""
    from worthline.cli import console

    rows, assets = _run_import(path, PRICE_COLUMNS, PRICE_REQUIRED, import_prices)
    console.print(f"Imported {rows:,} prices for {assets:,} assets")


@fx_app.command("import")
def fx_import(path: CsvFile) -> None:
    """Import FX rates from a CSV file with the header date,base,quote,rate (1 base = rate
    quote); a pair's rate already stored for a date is replaced. All or nothing, with a
    progress bar."""
    from worthline.cli import console

    rows = _run_import(path, FX_COLUMNS, FX_COLUMNS, import_fx_rates)
    console.print(f"Imported {rows:,} FX rates")
