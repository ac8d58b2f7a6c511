from ledger.factories import account, move


async def test_backdated_movement_corrects_later_days(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current:Main")
    await move(client, h, equity, bank, "100.00", value_time="2026-01-10T12:00:00Z")
    await move(client, h, equity, bank, "5.50", value_time="2026-01-05T09:00:00Z")
    daily = await client.get(
        f"/accounts/{bank['id']}/daily-balances",
        params={"start_date": "2026-01-04", "end_date": "2026-01-11"},
        headers=h,
    )
    assert daily.status_code == 200, daily.text
    assert [b["balance"] for b in daily.json()["balances"]] == [
        "0.00",
        "5.50",
        "5.50",
        "5.50",
        "5.50",
        "5.50",
        "105.50",
        "105.50",
    ]
    got = await client.get(f"/accounts/{bank['id']}", headers=h)
    assert got.json()["balance"] == "105.50"
    total = await client.get("/balances", params={"prefix": "Asset"}, headers=h)
    assert total.json() == {
        "prefix": "Asset",
        "balances_by_currency": {"GBP": "105.50"},
        "account_count": 1,
    }
