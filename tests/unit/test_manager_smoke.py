from .conftest import actor


async def test_create_session(manager):
    alice = actor("alice", "cs101")
    s = await manager.sessions.create(alice, {"title": "t", "members": [{"user": "bob", "role": "editor"}]})
    assert s["members"][0]["name"] == "bob"
