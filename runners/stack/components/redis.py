"""Redis: a private instance on loopback; a pure cache unless AOF is turned on."""

from __future__ import annotations

import shutil

import redis

from runners.stack.components.base import Component, quietly


class Redis(Component):
    """redis-server in the foreground, persistence off by default."""

    name = "redis"

    @property
    def url(self) -> str:
        return self.settings.redis_url

    def command(self) -> list[str]:
        s = self.settings
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        return [
            binary, "--bind", s.host, "--port", str(s.redis_port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if s.redis_aof else "no",
            "--daemonize", "no", "--logfile", "",
            # A cache (results, routes, rate counters; nothing that cannot be recomputed): bounded, least recently
            # used out first, rather than growing with every new image for the 7 days of the results' TTL.
            "--maxmemory", s.redis_maxmemory, "--maxmemory-policy", "allkeys-lru",
        ]

    def healthy(self) -> bool:
        def probe() -> bool:
            client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()

        return quietly(probe)
