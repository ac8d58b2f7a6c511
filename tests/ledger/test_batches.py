from collections import defaultdict
from datetime import date, timedelta

from ledger.factories import account


async def test_large_batch_over_many_days_matches_brute_force(client, auth):
    """A batch touching more (account, day) pairs than one projection statement holds."""
    h = auth["headers"]
    accounts = [await account(client, h, f"Asset:Bank:A{i}") for i in range(3)]
    start = date(2024, 1, 1)
    movements = []
    expected: dict[tuple[int, date], int] = defaultdict(int)
    # Descending days: each chunk sees days later than the ones still to come.
    for i in reversed(range(400)):
        src, dst = i % 3, (i + 1) % 3
        day = start + timedelta(days=i % 170)
        amount = 100 + i
        movements.append(
            {
                "from_account_id": accounts[src]["id"],
                "to_account_id": accounts[dst]["id"],
                "amount": f"{amount // 100}.{amount % 100:02d}",
                "value_time": f"{day}T10:00:00Z",
            }
        )
        expected[(src, day)] -= amount
        expected[(dst, day)] += amount
    response = await client.post("/movements/batch", json={"movements": movements}, headers=h)
    assert response.status_code == 201, response.text
    assert len({m["batch_id"] for m in response.json()["movements"]}) == 1

    end = start + timedelta(days=200)
    for index, acc in enumerate(accounts):
        daily = await client.get(
            f"/accounts/{acc['id']}/daily-balances",
            params={"start_date": str(start), "end_date": str(end)},
            headers=h,
        )
        assert daily.status_code == 200, daily.text
        running = 0
        for row in daily.json()["balances"]:
            running += expected.get((index, date.fromisoformat(row["date"])), 0)
            sign = "-" if running < 0 else ""
            assert row["balance"] == f"{sign}{abs(running) // 100}.{abs(running) % 100:02d}"
