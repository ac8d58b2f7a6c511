from conftest import PASSWORD


async def test_register_login_me(client, engine_name):
    registered = await client.post(
        "/auth/register", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201
    login = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    token = login.json()["access_token"]
    me = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {**registered.json()}
    assert me.json()["email"] == "ada@example.com"
