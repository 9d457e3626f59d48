"""PostgreSQL: a private cluster (initdb) on loopback, the service database, the schema migrated."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from runners.stack.components.base import Component, ComponentError, quietly


def postgres_bin_dir(configured: Path | None) -> Path:
    """The configured binaries, else the newest Debian install under /usr/lib/postgresql."""
    if configured is not None:
        return configured
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if installed:
        return installed[-1].parent
    found = shutil.which("postgres")
    if found is None:
        raise FileNotFoundError("PostgreSQL is not installed: run `imgrec stack install`")
    return Path(found).parent


class Postgres(Component):
    """PostgreSQL, run as an unprivileged OS user when the stack runs as root (postgres refuses root)."""

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT

    @property
    def url(self) -> str:
        return self.settings.database_url

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "socket"

    def run_as(self) -> str | None:
        return self.settings.postgres_os_user if os.geteuid() == 0 else None

    def _bin(self, tool: str) -> str:
        return str(postgres_bin_dir(self.settings.postgres_bin_dir) / tool)

    def prepare(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        user = self.run_as()
        if user is not None:
            # The unprivileged user must reach its data dir through the stack root and own its own tree.
            entry = pwd.getpwnam(user)
            for path in (self.settings.root, self.dir):
                path.chmod(path.stat().st_mode | 0o711)
            for path in (self.dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        command = [self._bin("initdb"), "-D", str(self.data_dir), "-U", self.settings.postgres_user,
                   "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"]
        with self.log_path.open("ab") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, user=user, check=False)
        if done.returncode != 0:
            raise ComponentError(self, f"initdb failed (exit code {done.returncode})")

    def command(self) -> list[str]:
        s = self.settings
        return [
            self._bin("postgres"), "-D", str(self.data_dir), "-h", s.host, "-p", str(s.postgres_port),
            "-k", str(self.socket_dir),
            # Durable like a production server: the batch job's exactly-once rests on a commit that was
            # acknowledged surviving a crash (a lost commit would move progress backwards or strand items).
            "-c", f"fsync={'on' if s.postgres_fsync else 'off'}",
            "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
            "-c", "max_connections=200",
        ]

    def _connect(self, dbname: str) -> psycopg.Connection:
        s = self.settings
        return psycopg.connect(host=s.host, port=s.postgres_port, user=s.postgres_user, dbname=dbname,
                               connect_timeout=2, autocommit=True)

    def healthy(self) -> bool:
        def probe() -> bool:
            with self._connect("postgres") as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)

        return quietly(probe)

    def after_ready(self) -> None:
        db = self.settings.postgres_db
        with self._connect("postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{db}"')
        # Imported here: Alembic is only needed once the server is up.
        from transforms.composition import migrate

        migrate(self.url)
