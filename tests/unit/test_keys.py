"""API keys: the key cache of an API process, `imgrec keys list | revoke`, and revocation within the cache's TTL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from runners.cli import app as cli
from transforms.composition import migrate, open_store
from transforms.keys import CallerKeys, find_key, hash_key, key_id
from transforms.settings import Settings, get_settings
from transforms.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """The SQLite store that both the CLI (through the environment) and the tests open."""
    monkeypatch.setenv("IMGREC_VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    settings.var_dir.mkdir(parents=True)
    migrate(settings.resolved_database_url)
    opened = open_store(settings)
    yield opened
    opened.close()
    get_settings.cache_clear()


def keys(*args: str) -> str:
    result = CliRunner().invoke(cli, ["keys", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_known_key_is_remembered_for_the_ttl_and_a_revoked_one_is_then_refused(store: Store) -> None:
    key = store.keys.create("alice")
    clock = Clock()
    cache = CallerKeys(store.keys, ttl_s=30, clock=clock)
    assert cache.remembered(key) is None and cache.lookup(key).caller_id == "alice"
    assert cache.lookup("irk_unknown") is None and cache.remembered("irk_unknown") is None
    assert store.keys.revoke(hash_key(key))
    clock.now += 29.9
    assert cache.remembered(key).caller_id == "alice", "within the TTL the process still trusts what it saw"
    clock.now += 0.1
    assert cache.remembered(key) is None and cache.lookup(key) is None


def test_keys_list_shows_ids_and_callers_but_never_a_key(store: Store) -> None:
    first, second = store.keys.create("alice"), store.keys.create("bob")
    rows = json.loads(keys("list", "--json"))
    assert [(r["id"], r["caller_id"], r["revoked_at"]) for r in rows] == [
        (key_id(hash_key(first)), "alice", None), (key_id(hash_key(second)), "bob", None)]
    text = keys("list")
    assert first not in text and second not in text and hash_key(first) not in text
    assert key_id(hash_key(first)) in text and "active" in text


def test_keys_revoke_by_id_or_by_key(store: Store) -> None:
    first, second = store.keys.create("alice"), store.keys.create("bob")
    assert "revoked " + key_id(hash_key(first)) in keys("revoke", key_id(hash_key(first)))
    assert "revoked " + key_id(hash_key(second)) in keys("revoke", second)
    assert store.keys.caller_for(first) is None and store.keys.caller_for(second) is None
    assert "already revoked" in keys("revoke", second)
    assert all(r["revoked_at"] for r in json.loads(keys("list", "--json")))
    unknown = CliRunner().invoke(cli, ["keys", "revoke", "nope"])
    assert unknown.exit_code == 1


def test_find_key_matches_the_key_or_its_id_only(store: Store) -> None:
    key = store.keys.create("alice")
    listed = store.keys.all()
    assert find_key(listed, key) == find_key(listed, key_id(hash_key(key))) == listed[0]
    assert find_key(listed, key[:-1]) is None and find_key(listed, key_id(hash_key(key))[:-1]) is None


def test_a_running_api_refuses_a_revoked_key_within_the_key_cache_ttl(store: Store, settings: Settings) -> None:
    clock = Clock()
    with TestClient(create_app(settings)) as client:
        client.app.state.caller_keys.clock = clock
        ttl = client.app.state.caller_keys.ttl_s
        assert 0 < ttl <= 60, "documented: at most a minute"
        key = store.keys.create("alice")
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/recognize/batch/none", headers=headers).status_code == 404  # known caller
        keys("revoke", key_id(hash_key(key)))
        clock.now += ttl - 1
        assert client.get("/v1/recognize/batch/none", headers=headers).status_code == 404
        clock.now += 1
        refused = client.get("/v1/recognize/batch/none", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"]
