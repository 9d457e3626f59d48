"""The batch job's keeper (`imgrec job keep`): resubmits the job from its newest checkpoint when the cluster lost it."""

from __future__ import annotations

import sys
import time

from pipelines.job_keeper import heartbeat_path
from runners.stack.components.base import Component

BEAT_S = 10.0  # the keeper touches its heartbeat every 2 s


class JobKeeper(Component):
    """A small supervised process that reconciles the Flink job with its desired state."""

    name = "flink-job-keeper"

    @property
    def url(self) -> str:
        return self.settings.flink_rest_url

    def command(self) -> list[str]:
        return [sys.executable, "-m", "runners.cli", "job", "keep"]

    def env(self) -> dict[str, str]:
        return super().env() | self.settings.service_env() | {"IMGREC_VAR_DIR": str(self.app_settings.var_dir)}

    def healthy(self) -> bool:
        try:
            return time.time() - heartbeat_path(self.app_settings).stat().st_mtime < BEAT_S
        except OSError:
            return False
