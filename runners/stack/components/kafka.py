"""Apache Kafka: the real broker from Maven Central jars, one combined KRaft broker+controller node."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pipelines.job_spec import CONSUMER_GROUP
from runners.kafka_topics import ensure_topics, wanted_topics
from runners.stack.components.base import Component, ComponentError, port_open, quietly
from runners.stack.install import HERE, ensure_kafka_jars

LOG4J_CONFIG = HERE / "kafka-log4j2.properties"


class Kafka(Component):
    """`kafka.Kafka` in KRaft mode on loopback, with the batch, dead-letter and results topics."""

    name = "kafka"

    @property
    def url(self) -> str:
        return self.settings.kafka_bootstrap

    @property
    def config_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def _java(self, main_class: str, *args: str) -> list[str]:
        jars = self.settings.kafka_jars_dir
        return [shutil.which("java") or "java", f"-Xmx{self.settings.kafka_heap}", "-XX:+UseG1GC",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                "-cp", f"{jars}/*", main_class, *args]

    def _properties(self) -> str:
        s = self.settings
        listeners = f"PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}"
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{s.host}:{s.kafka_controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://{s.host}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # Topics are created explicitly, so a misspelt topic name fails instead of appearing.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        return "".join(f"{key}={value}\n" for key, value in values.items())

    def prepare(self) -> None:
        ensure_kafka_jars(self.settings, say=lambda _: None)
        # Written every start so a changed port takes effect; the storage is formatted once.
        self.config_path.write_text(self._properties())
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # `--cluster-id=` form: a base64 id may start with "-", which argparse would take for an option.
        command = self._java(
            "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(self.config_path)
        )
        with self.log_path.open("ab") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise ComponentError(self, f"storage format failed (exit code {done.returncode})")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.config_path))

    def admin(self) -> KafkaAdminClient:
        """An admin client on this broker (the caller closes it)."""
        return KafkaAdminClient(bootstrap_servers=self.url, client_id="imgrec-stack",
                                request_timeout_ms=5000, bootstrap_timeout_ms=2000)

    def healthy(self) -> bool:
        # The admin client waits for its bootstrap timeout on a closed port; the port check does not.
        if not port_open(self.settings.host, self.settings.kafka_port):
            return False

        def probe() -> bool:
            admin = self.admin()
            try:
                admin.list_topics()
                return True
            finally:
                admin.close()

        return quietly(probe)

    def after_ready(self) -> None:
        """Create the topics, then wait until they have leaders and the job's group coordinator answers.

        A fresh broker accepts a topic before every partition has a leader, and creates its offsets topic (and
        with it every group coordinator) only when a client first asks for one; a job started before either is
        settled has seen its source stall. So the stack is not ready until both are.
        """
        admin = self.admin()
        try:
            deadline = time.monotonic() + self.settings.start_timeout_s
            ensure_topics(admin, wanted_topics(self.app_settings), timeout_ms=int(self.settings.start_timeout_s * 1000))
            while True:
                try:
                    admin.list_group_offsets({CONSUMER_GROUP: None})  # answered by the group's coordinator
                    break
                except KafkaError as exc:
                    if time.monotonic() > deadline:
                        raise ComponentError(self, f"no group coordinator for {CONSUMER_GROUP}: {exc}") from exc
                    time.sleep(0.5)
        finally:
            admin.close()
