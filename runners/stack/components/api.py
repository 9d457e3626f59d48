"""The API (`imgrec serve`) as a process configured to use every service of the stack."""

from __future__ import annotations

import json
import sys

from runners.stack.components.base import ProjectProcess, http_ok


class Api(ProjectProcess):
    """uvicorn serving the FastAPI app, with IMGREC_* pointing at the stack."""

    name = "api"

    @property
    def url(self) -> str:
        return self.settings.api_url

    def command(self) -> list[str]:
        s = self.settings
        return [sys.executable, "-m", "runners.cli", "serve", "--host", s.host, "--port", str(s.api_port)]

    def env(self) -> dict[str, str]:
        app = self.app_settings
        return super().env() | self.settings.service_env() | {
            "IMGREC_VAR_DIR": str(app.var_dir),
            "IMGREC_MODEL_STORE": str(app.resolved_model_store),
            "IMGREC_FETCH_ALLOW_HOSTS": json.dumps(app.fetch_allow_hosts),
            "IMGREC_API_WORKERS": str(app.api_workers),
        }

    def healthy(self) -> bool:
        return http_ok(f"{self.url}/healthz")
