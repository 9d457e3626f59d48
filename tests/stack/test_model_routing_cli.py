"""`imgrec models route` promotes and canaries a version through PostgreSQL and Redis; the API follows at once."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections import Counter

import redis
from sqlalchemy import text

from tests.api_helpers import api_client, imgrec, photo_bytes
from tests.db_helpers import fresh_database
from transforms.adapters.sql import SqlStore, upgrade
from transforms.model_registry import find
from transforms.settings import REPO_ROOT, Settings

DRAWS = 300
WEIGHT = 0.3


def test_canary_share_of_traffic_and_promotion(postgres_url: str, redis_url: str, tmp_path) -> None:
    database_url = fresh_database(postgres_url)
    upgrade(database_url)
    store = SqlStore.from_url(database_url)
    v1 = find("tiny-rgb")
    store.registry.seed([v1, dataclasses.replace(v1, version="2", is_active=False)])  # same artifact, new version
    store.close()
    env = {**os.environ, "IMGREC_DATABASE_URL": database_url, "IMGREC_REDIS_URL": redis_url}
    routed = imgrec("models", "route", "tiny-rgb", "--active", "1", "--canary", "2", "--weight", str(WEIGHT), env=env)
    assert routed.returncode == 0, routed.stderr
    assert json.loads(routed.stdout) == {"version": "1", "canary_version": "2", "canary_weight": WEIGHT}
    fields = redis.Redis.from_url(redis_url).hgetall("model:active:tiny-rgb")
    assert fields[b"version"] == b"1" and fields[b"canary_version"] == b"2"

    settings = Settings(
        var_dir=tmp_path,
        model_store=REPO_ROOT / "var" / "models",
        database_url=database_url,
        redis_url=redis_url,
        rate_limit_per_s=10_000,  # 300 draws as fast as the app answers: a routing test, not a rate-limit one
        rate_limit_burst=10_000,
        _env_file=None,
    )
    image = base64.b64encode(photo_bytes("coffee", size=32)).decode()
    with api_client(settings) as (client, headers):
        versions = Counter(
            client.post("/v1/recognize", json={"model_id": "tiny-rgb", "image_data": image}, headers=headers).json()[
                "model_version"
            ]
            for _ in range(DRAWS)
        )
        share = versions["2"] / DRAWS
        sigma = (WEIGHT * (1 - WEIGHT) / DRAWS) ** 0.5
        assert abs(share - WEIGHT) < 4 * sigma, versions  # binomial bounds: fails ~1 run in 16,000
        client.app.state.services.ports.finished_requests.flush()  # sync rows are written in the background
        with SqlStore.from_url(database_url).engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT model_version, count(*) FROM inference_results GROUP BY 1")).all())
        assert stored == dict(versions)  # the chosen version is what was stored

        promoted = imgrec("models", "route", "tiny-rgb", "--active", "2", env=env)
        assert promoted.returncode == 0, promoted.stderr
        after = {
            client.post("/v1/recognize", json={"model_id": "tiny-rgb", "image_data": image}, headers=headers).json()[
                "model_version"
            ]
            for _ in range(20)
        }
        assert after == {"2"}

    bad = imgrec("models", "route", "tiny-rgb", "--active", "9", env=env)
    assert bad.returncode != 0 and "no version '9'" in bad.stderr
