"""Run the suite on one machine: a broker and the three services as separate processes.

When ``KAFKA_BOOTSTRAP_SERVERS`` is set the services use that Kafka; otherwise an embedded
Tansu broker is started on a free loopback port. Each service runs as
``python -m tryon.services.<name>`` with its own data folder and log file, and counts as
started once its gRPC health service answers SERVING. While a service starts, the
``training progress`` lines it logs (see ``tryon.shared.progress``) are handed to the suite's
``on_progress``, so a terminal can show which service trains what and the time left. Stopping
sends SIGTERM, which lets each service drain its calls, and kills only a process that outlives
the grace period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tryon.shared.broker import EmbeddedBroker, free_loopback_port
from tryon.shared.healthcheck import check
from tryon.shared.progress import PROGRESS_MESSAGE
from tryon.shared.settings import KAFKA_BOOTSTRAP_VARIABLE

SERVICE_NAMES = {
    "body": "tryon.v1.BodyService",
    "garment": "tryon.v1.GarmentService",
    "recommendation": "tryon.v1.RecommendationService",
}


class ServiceFailedToStart(RuntimeError):
    """A service exited or did not become SERVING in time; the message ends with its log tail."""


@dataclass
class ServiceProcess:
    """One running service: its name, gRPC address, process and log file."""

    name: str
    address: str
    process: subprocess.Popen
    log_path: Path
    _read_up_to: int = 0

    @property
    def grpc_service(self) -> str:
        return SERVICE_NAMES[self.name]

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the service wrote, for error messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def new_progress(self) -> list[dict]:
        """The progress lines the service logged since the last call, oldest first."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as log:
            log.seek(self._read_up_to)
            written = log.read()
        complete = written[: written.rfind(b"\n") + 1]
        self._read_up_to += len(complete)
        lines = []
        for line in complete.splitlines():
            if PROGRESS_MESSAGE.encode() not in line:
                continue
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines

    def stop(self, grace_s: float) -> int:
        """SIGTERM, wait up to grace_s, then SIGKILL; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class LocalSuite:
    """The broker and a chosen set of services, started together and stopped together.

    A given ``bootstrap_servers`` is used as it is; otherwise ``KAFKA_BOOTSTRAP_SERVERS``, else an
    embedded broker that ``stop()`` stops too.
    """

    data_dir: Path
    services: Sequence[str] = tuple(SERVICE_NAMES)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 900.0
    grace_s: float = 15.0
    bootstrap_servers: str = ""
    broker: EmbeddedBroker | None = None
    running: dict[str, ServiceProcess] = field(default_factory=dict)
    on_progress: Callable[[str, dict], None] | None = None
    """Called with a service's name and each progress line it logs while it starts."""

    def __enter__(self) -> LocalSuite:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the broker if needed, then every service, and wait until all are SERVING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap_servers = self.bootstrap_servers or os.environ.get(KAFKA_BOOTSTRAP_VARIABLE, "")
        if not self.bootstrap_servers:
            self.broker = EmbeddedBroker(log_path=self.data_dir / "broker.log")
            self.broker.start()
            self.bootstrap_servers = self.broker.bootstrap_servers
        for name in self.services:
            self.running[name] = self._spawn(name)
        for name in self.services:
            self.wait_until_serving(name)

    def add(self, name: str) -> ServiceProcess:
        """Start one more service and wait until it is SERVING (e.g. once what it trains on exists)."""
        self.running[name] = self._spawn(name)
        self.wait_until_serving(name)
        return self.running[name]

    def _spawn(self, name: str) -> ServiceProcess:
        address = f"127.0.0.1:{free_loopback_port()}"
        prefix = f"TRYON_{name.upper()}_"
        env = dict(os.environ)
        env.update(
            {
                KAFKA_BOOTSTRAP_VARIABLE: self.bootstrap_servers,
                prefix + "PORT": address.rsplit(":", 1)[1],
                prefix + "DATA_DIR": str(self.data_dir / name),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if "body" in self.running:
            env["TRYON_GARMENT_BODY_SERVICE_ADDRESS"] = self.running["body"].address
        env.update(self.extra_env)
        log_path = self.data_dir / f"{name}.log"
        with log_path.open("ab") as log:
            earlier_runs = log.tell()
            process = subprocess.Popen(
                [sys.executable, "-m", f"tryon.services.{name}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return ServiceProcess(name, address, process, log_path, _read_up_to=earlier_runs)

    def wait_until_serving(self, name: str) -> float:
        """Poll the service's health until SERVING; fail early if its process exits."""
        service = self.running[name]
        started = time.monotonic()
        while not check(service.address, service.grpc_service, timeout=1.0):
            if self.on_progress is not None:
                for line in service.new_progress():
                    self.on_progress(name, line)
            if service.process.poll() is not None:
                raise ServiceFailedToStart(
                    f"{name} exited with status {service.process.returncode} while starting; "
                    f"its log {service.log_path} ends with:\n{service.log_tail()}"
                )
            if time.monotonic() - started > self.startup_timeout_s:
                raise ServiceFailedToStart(
                    f"{name} was not SERVING after {self.startup_timeout_s:.0f} s; "
                    f"its log {service.log_path} ends with:\n{service.log_tail()}"
                )
            time.sleep(0.2)
        return time.monotonic() - started

    def address(self, name: str) -> str:
        """host:port of a running service."""
        return self.running[name].address

    def stop(self) -> dict[str, int]:
        """Stop the services in reverse start order, then the broker; returns exit statuses."""
        statuses = {}
        for name in reversed(list(self.running)):
            statuses[name] = self.running.pop(name).stop(self.grace_s)
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        return statuses
