"""`imgrec serve` as a real process (embedded default) driven by `imgrec batch submit --wait` and `status`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.api_helpers import imgrec, photo_bytes
from tests.served import ServedApi


def test_dev_key_is_printed_and_batch_cli_waits_for_the_result(served_api: ServedApi, tmp_path: Path) -> None:
    assert served_api.key in (served_api.var / "serve.log").read_text()
    photo = tmp_path / "coffee.jpg"
    photo.write_bytes(photo_bytes("coffee", size=180))
    env = {**served_api.env, "IMGREC_API_URL": served_api.url, "IMGREC_API_KEY": served_api.key}
    out = imgrec("batch", "submit", str(photo), str(photo), "--model", "scene-classification", "--wait", env=env)
    assert out.returncode == 0, out.stderr
    batch_id, summary = out.stdout.strip().splitlines()[-2:]
    assert json.loads(summary) == {"status": "done", "completed_count": 2, "failed_count": 0, "total_count": 2}
    out = imgrec("batch", "status", batch_id, "--results", env=env)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["status"] == "done" and lines[1]["labels"][0]["label"] == "espresso"


def test_batch_cli_reports_api_errors(served_api: ServedApi, tmp_path: Path) -> None:
    photo = tmp_path / "x.jpg"
    photo.write_bytes(photo_bytes("coffee", size=50))
    env = {**served_api.env, "IMGREC_API_URL": served_api.url, "IMGREC_API_KEY": "wrong"}
    out = imgrec("batch", "submit", str(photo), "--model", "scene-classification", env=env)
    assert out.returncode == 1 and "unauthorized" in out.stderr
