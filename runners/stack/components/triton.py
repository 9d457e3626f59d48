"""Triton Inference Server: the `tritonserver` binary shipped in the nvidia-pytriton wheel."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import httpx

from runners.stack.components.base import VENV_BIN, Component, quietly


def pytriton_dist() -> Path:
    """The Triton distribution inside the installed nvidia-pytriton wheel (found without importing it)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("nvidia-pytriton is not installed in this environment")
    return Path(spec.origin).parent / "tritonserver"


class Triton(Component):
    """tritonserver with the Python backend, serving the project's model repository on loopback."""

    name = "triton"
    _repository: Path

    @property
    def url(self) -> str:
        return self.settings.triton_url

    @property
    def backends_dir(self) -> Path:
        return self.dir / "backends"

    @property
    def shm_prefix(self) -> str:
        # Unique per stack, so `down` removes this server's leftover regions and nobody else's.
        return f"imgrec_triton_{self.settings.triton_grpc_port}_"

    def repository(self) -> Path:
        """The configured repository, else one generated from the model registry under the stack root."""
        if self.settings.triton_repository is not None:
            return self.settings.triton_repository
        # Imported here: it loads onnxruntime, which `imgrec stack status` does not need.
        from transforms.composition import write_triton_repository

        return write_triton_repository(self.app_settings, self.settings.triton_repository_dir)

    def prepare(self) -> None:
        # The Python backend runs the stub found next to it, built for this interpreter's version,
        # so the backend is assembled the way pytriton itself does it.
        dist = pytriton_dist()
        python_backend = self.backends_dir / "python"
        shutil.rmtree(self.backends_dir, ignore_errors=True)
        shutil.copytree(dist / "backends", self.backends_dir)
        stub = dist / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}"
        shutil.copy(stub / "triton_python_backend_stub", python_backend / "triton_python_backend_stub")
        self._repository = self.repository()

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(pytriton_dist() / "bin" / "tritonserver"),
            f"--model-repository={self._repository}",
            f"--backend-directory={self.backends_dir}",
            f"--http-address={s.host}", f"--http-port={s.triton_http_port}",
            f"--grpc-address={s.host}", f"--grpc-port={s.triton_grpc_port}",
            f"--metrics-address={s.host}", f"--metrics-port={s.triton_metrics_port}",
            f"--exit-timeout-secs={s.triton_exit_timeout_s}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            # Versions are loaded and unloaded live by the model lifecycle (repository API); at start, everything
            # the repository's configs name.
            "--model-control-mode=explicit",
            "--load-model=*",
            "--log-verbose=0",
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        # The stub needs the interpreter's libpython (pyenv) and finds numpy/onnxruntime via `python3`.
        libs = [str(pytriton_dist().parent.parent / "nvidia_pytriton.libs"), sysconfig.get_config_var("LIBDIR")]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "/usr/bin:/bin")])
        env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
        return env

    def healthy(self) -> bool:
        url = f"{self.settings.triton_http_url}/v2/health/ready"
        return quietly(lambda: httpx.get(url, timeout=1.0).status_code == 200)

    def after_stop(self) -> None:
        for region in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            region.unlink(missing_ok=True)
