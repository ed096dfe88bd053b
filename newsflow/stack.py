"""The local stack: a real Kafka broker (KRaft) and a real Elasticsearch node, no Docker.

Both servers come from Maven Central: Maven resolves the Kafka classpath and Elastic's
Elasticsearch distribution from the small poms in ``deploy/local/``; the machine's JDK runs them.
Everything they write (data, logs, pid files, rendered configs) lives under the state directory.
Kafka has two listeners: PLAINTEXT for everyday work and SASL_SSL (PLAIN over TLS, with a CA,
certificate and user generated into ``state_dir/security``) to exercise the secured clients.

``up`` is idempotent and waits for health; ``down`` stops only processes whose pid files we wrote
and whose command line is still ours, so it never kills a stranger that reused a pid.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from newsflow.errors import NewsflowError
from newsflow.index import hunspell_locales
from newsflow.settings import StackSettings
from newsflow.stack_security import StackSecurity

DEPLOY_LOCAL = Path(__file__).resolve().parent.parent / "deploy" / "local"
MIN_JAVA = 17
JDK_FIX = (
    f"install JDK {MIN_JAVA} or newer (Debian: `apt-get install openjdk-17-jdk-headless`) or "
    "point JAVA_HOME at one"
)
MAVEN_FIX = "install Maven (Debian: `apt-get install maven`)"
_LOG_TAIL_LINES = 25


class StackError(NewsflowError):
    """A problem starting or stopping the stack, phrased as what happened and what to do."""


# ---------------------------------------------------------------------------------------------
# Pure helpers


def parse_java_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output (``"17.0.15"`` -> 17, ``"1.8.0_392"`` -> 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def java_executable() -> str | None:
    """The java the stack runs: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else the PATH's."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    return java if java and Path(java).exists() else None


def java_major(java: str) -> int | None:
    """The major version ``java -version`` reports, None if it says nothing recognizable."""
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    return parse_java_major(result.stderr + result.stdout)


def install_hunspell_dictionaries(source: Path, target: Path, locales: Iterable[str]) -> None:
    """Copy the dictionaries the index template's analyzers need into the node's config."""
    wanted = sorted(locales)
    missing = [
        locale
        for locale in wanted
        if not all((source / f"{locale}.{part}").is_file() for part in ("aff", "dic"))
    ]
    if missing:
        raise StackError(
            f"Hunspell dictionaries {', '.join(missing)} not found in {source}; install them "
            "with `bash deploy/local/install-system-packages.sh` (Debian's hunspell-* packages) "
            "or point NEWSFLOW_STACK__HUNSPELL_DIR at a directory holding <locale>.aff/.dic"
        )
    for locale in wanted:
        (target / locale).mkdir(parents=True, exist_ok=True)
        for part in ("aff", "dic"):
            shutil.copyfile(source / f"{locale}.{part}", target / locale / f"{locale}.{part}")


def kafka_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"(no log at {path})"
    content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(content[-lines:])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def process_cmdline(pid: int, settle_seconds: float = 2.0) -> str | None:
    """The command line of a live process, or None if it is gone or a zombie.

    A process caught between fork and exec shows an empty command line for a moment; wait for
    it to settle rather than mistake a server we just started for a stale pid.
    """
    deadline = time.monotonic() + settle_seconds
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            return None
        if state == "Z":
            return None
        if raw or time.monotonic() > deadline:
            return raw.replace(b"\x00", b" ").decode(errors="replace").strip() or None
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# One supervised Java server


@dataclass
class Service:
    name: str
    port: int
    home: Path  # state sub-directory
    health: Callable[[], str | None]  # None = healthy, else what is wrong
    version: Callable[[], str]
    #: Every port the service binds, with the setting that moves it.
    ports: dict[int, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "console.log"

    def running_pid(self) -> int | None:
        """Pid from our pid file if that process is alive and still ours; clears stale files."""
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            pid = -1
        cmdline = process_cmdline(pid) if pid > 0 else None
        # Our processes name their home (under the state dir) on the command line; a reused pid
        # belonging to anything else does not.
        if cmdline and str(self.home) in cmdline:
            return pid
        print(
            f"{self.name}: removing stale pid file {self.pid_file} (pid {pid} is not running "
            f"{self.name} any more)",
            file=sys.stderr,
        )
        self.pid_file.unlink()
        return None


class LocalStack:
    """Start, stop and inspect the local Kafka + Elasticsearch pair."""

    def __init__(self, settings: StackSettings, progress: Callable[[str], None] | None = None):
        self.settings = settings
        self.state = settings.state_dir.resolve()
        self._say = progress or (lambda message: print(message, file=sys.stderr))
        self.security = StackSecurity(self.state / "security")
        self.kafka = Service(
            name="kafka",
            port=settings.kafka_port,
            home=self.state / "kafka",
            health=self._kafka_health,
            version=self._kafka_version,
            ports={
                settings.kafka_port: "kafka_port",
                settings.kafka_controller_port: "kafka_controller_port",
                settings.kafka_sasl_port: "kafka_sasl_port",
            },
        )
        self.elasticsearch = Service(
            name="elasticsearch",
            port=settings.elasticsearch_port,
            home=self.state / "elasticsearch",
            health=self._es_health,
            version=self._es_version,
            ports={
                settings.elasticsearch_port: "elasticsearch_port",
                settings.elasticsearch_transport_port: "elasticsearch_transport_port",
            },
        )

    @property
    def services(self) -> tuple[Service, Service]:
        return (self.kafka, self.elasticsearch)

    # -- up -----------------------------------------------------------------------------------

    def up(self) -> None:
        to_start = [s for s in self.services if s.running_pid() is None]
        if not to_start:
            self._say("stack already running")
            self._wait_healthy(list(self.services))
            return
        java = self._check_java()
        for service in to_start:
            for port, setting in service.ports.items():
                if port_in_use(port):
                    raise StackError(
                        f"port {port} is already in use by another process, so {service.name} "
                        f"cannot start; stop that process or choose another port with "
                        f"NEWSFLOW_STACK__{setting.upper()}"
                    )
        if self.kafka in to_start:
            self._start_kafka(java)
        if self.elasticsearch in to_start:
            self._start_elasticsearch(java)
        self._wait_healthy(to_start)

    def _check_java(self) -> str:
        java = java_executable()
        if java is None:
            raise StackError(f"Java not found; {JDK_FIX}")
        major = java_major(java)
        if major is None or major < MIN_JAVA:
            raise StackError(
                f"{java} is Java {major or 'unknown'}; Kafka 4 and Elasticsearch 8 need Java "
                f"{MIN_JAVA}+: {JDK_FIX}"
            )
        return java

    def _maven(self, pom: Path, *goal: str) -> None:
        mvn = shutil.which("mvn")
        if not mvn:
            raise StackError(
                "Maven (mvn) not found; it resolves the Kafka and Elasticsearch jars from Maven "
                f"Central: {MAVEN_FIX}"
            )
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom), *goal],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise StackError(
                f"Maven could not resolve {pom.parent.name} from Maven Central (offline, or "
                f"blocked by a proxy?). Check network access to repo.maven.apache.org, or run "
                f"once online to fill ~/.m2. Maven said:\n{output}"
            )

    def _start_kafka(self, java: str) -> None:
        home = self.kafka.home
        (home / "logs").mkdir(parents=True, exist_ok=True)
        classpath_file = home / "classpath.txt"
        if not classpath_file.exists():
            self._say("kafka: resolving the broker classpath with Maven ...")
            self._maven(
                DEPLOY_LOCAL / "kafka" / "pom.xml",
                "dependency:build-classpath",
                f"-Dmdep.outputFile={classpath_file}",
            )
        config = home / "server.properties"
        data_dir = home / "data"
        self.security.ensure()
        username, password = self.security.credentials()
        config.touch(mode=0o600)  # it holds the SASL user's password
        config.chmod(0o600)
        config.write_text(
            Template((DEPLOY_LOCAL / "kafka" / "server.properties").read_text()).substitute(
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                sasl_port=self.settings.kafka_sasl_port,
                keystore=self.security.keystore_file,
                sasl_username=username,
                sasl_password=password,
                data_dir=data_dir,
            )
        )
        base = [
            java,
            f"-Xms{self.settings.kafka_heap}",
            f"-Xmx{self.settings.kafka_heap}",
            f"-Dkafka.logs.dir={home / 'logs'}",
            f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'kafka' / 'log4j2.properties'}",
            "-cp",
            classpath_file.read_text().strip(),
        ]
        if not (data_dir / "meta.properties").exists():
            self._say("kafka: formatting KRaft storage ...")
            result = subprocess.run(
                [
                    *base,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    kafka_cluster_id(),
                    "-c",
                    str(config),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StackError(f"kafka: formatting storage failed:\n{result.stderr[-2000:]}")
        self._say(
            f"kafka: starting broker on port {self.settings.kafka_port} (SASL_SSL on "
            f"{self.settings.kafka_sasl_port}: CA {self.security.ca_file}, user and password in "
            f"{self.security.credentials_file}) ..."
        )
        self._spawn(self.kafka, [*base, "kafka.Kafka", str(config)], env=os.environ.copy())

    def _start_elasticsearch(self, java: str) -> None:
        home = self.elasticsearch.home
        dist = home / "dist"
        es_home = self._unpack_elasticsearch(dist)
        config_dir, data_dir, logs_dir, tmp_dir = (
            home / "config",
            home / "data",
            home / "logs",
            home / "tmp",
        )
        for directory in (data_dir, logs_dir, tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if not config_dir.exists():
            shutil.copytree(es_home / "config", config_dir)
            # The stock JVM options write GC logs and heap dumps relative to ES_HOME, which the
            # unprivileged user may not write to; point them into our logs directory.
            jvm_options = config_dir / "jvm.options"
            jvm_options.write_text(
                jvm_options.read_text()
                .replace("file=logs/", f"file={logs_dir}/")
                .replace("HeapDumpPath=data", f"HeapDumpPath={logs_dir}")
                .replace("ErrorFile=logs/", f"ErrorFile={logs_dir}/")
            )
        install_hunspell_dictionaries(
            self.settings.hunspell_dir, config_dir / "hunspell", hunspell_locales()
        )
        (config_dir / "elasticsearch.yml").write_text(
            Template((DEPLOY_LOCAL / "elasticsearch" / "elasticsearch.yml").read_text()).substitute(
                port=self.settings.elasticsearch_port,
                transport_port=self.settings.elasticsearch_transport_port,
                data_dir=data_dir,
                logs_dir=logs_dir,
            )
        )
        env = {
            **os.environ,
            "ES_JAVA_HOME": str(Path(java).resolve().parent.parent),
            "ES_PATH_CONF": str(config_dir),
            "ES_TMPDIR": str(tmp_dir),
            "ES_JAVA_OPTS": f"-Xms{self.settings.elasticsearch_heap} "
            f"-Xmx{self.settings.elasticsearch_heap}",
        }
        command = [str(es_home / "bin" / "elasticsearch"), "-p", str(home / "server.pid")]
        if os.geteuid() == 0:
            # Elasticsearch refuses to run as root: drop to an unprivileged user for it alone.
            user = pwd.getpwnam(self.settings.elasticsearch_user)
            self._check_reachable(home, user)
            os.chown(home, user.pw_uid, user.pw_gid)
            for directory in (config_dir, data_dir, logs_dir, tmp_dir):
                for path in (directory, *directory.rglob("*")):
                    os.chown(path, user.pw_uid, user.pw_gid)
            command = [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                *command,
            ]
        self._say(f"elasticsearch: starting node on port {self.settings.elasticsearch_port} ...")
        self._spawn(self.elasticsearch, command, env=env)

    def _check_reachable(self, home: Path, user: pwd.struct_passwd) -> None:
        """The unprivileged user must be able to reach the state dir (not so under /root)."""
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                "test",
                "-x",
                str(home),
            ],
            check=False,
        )
        if probe.returncode != 0:
            raise StackError(
                f"Elasticsearch refuses to run as root, so it runs as {user.pw_name!r}, who cannot "
                f"reach {home}. Put the state directory somewhere {user.pw_name!r} can traverse, "
                "e.g. NEWSFLOW_STACK__STATE_DIR=/var/tmp/newsflow, or run as a normal user"
            )

    def _unpack_elasticsearch(self, dist: Path) -> Path:
        existing = sorted(dist.glob("elasticsearch-*/bin/elasticsearch"))
        if existing:
            return existing[-1].parent.parent
        self._say("elasticsearch: resolving the distribution with Maven ...")
        downloads = dist / "zip"
        self._maven(
            DEPLOY_LOCAL / "elasticsearch" / "pom.xml",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={downloads}",
        )
        archive = next(downloads.glob("elasticsearch-*.zip"))
        self._say(f"elasticsearch: unpacking {archive.name} ...")
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                target = Path(zipped.extract(member, dist))
                mode = member.external_attr >> 16
                if mode:
                    target.chmod(mode)
        shutil.rmtree(downloads)
        return sorted(dist.glob("elasticsearch-*/bin/elasticsearch"))[-1].parent.parent

    def _spawn(self, service: Service, command: list[str], env: dict[str, str]) -> None:
        """Start detached, in the service's home (its JVM options use relative log paths)."""
        service.log_file.parent.mkdir(parents=True, exist_ok=True)
        with service.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=service.home,
                start_new_session=True,  # survives this CLI; `down` signals the whole group
            )
        service.pid_file.write_text(str(process.pid))

    def _wait_healthy(self, services: list[Service]) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_seconds
        waiting = list(services)
        started = time.monotonic()
        while waiting:
            for service in list(waiting):
                if service.running_pid() is None:
                    raise StackError(
                        f"{service.name} exited during start-up. Last lines of "
                        f"{service.log_file}:\n{tail(service.log_file)}"
                    )
                if service.health() is None:
                    self._say(f"{service.name}: healthy after {time.monotonic() - started:.0f}s")
                    waiting.remove(service)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                logs = "\n".join(f"--- {s.log_file}:\n{tail(s.log_file)}" for s in waiting)
                raise StackError(
                    f"{names} not healthy after {self.settings.start_timeout_seconds:.0f}s "
                    f"(raise NEWSFLOW_STACK__START_TIMEOUT_SECONDS on slow machines).\n{logs}"
                )
            if waiting:
                time.sleep(1)

    # -- down ---------------------------------------------------------------------------------

    def down(self, timeout: float = 60.0) -> None:
        for service in self.services:
            self.stop(service, timeout)

    def stop(self, service: Service, timeout: float = 60.0) -> None:
        """Stop one service: SIGTERM, then SIGKILL after ``timeout``; ``up`` restarts it."""
        pid = service.running_pid()
        if pid is None:
            self._say(f"{service.name}: not running")
            return
        self._say(f"{service.name}: stopping pid {pid} ...")
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_cmdline(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if process_cmdline(pid):
            self._say(f"{service.name}: did not stop in {timeout:.0f}s, killing")
            _signal_group(pid, signal.SIGKILL)
        service.pid_file.unlink(missing_ok=True)
        self._say(f"{service.name}: stopped")

    # -- status -------------------------------------------------------------------------------

    def status(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for service in self.services:
            pid = service.running_pid()
            problem = service.health() if pid else "not running"
            rows.append(
                {
                    "service": service.name,
                    "version": service.version() if pid and problem is None else "-",
                    "port": service.port,
                    "pid": pid or "-",
                    "health": problem or "healthy",
                }
            )
        return rows

    # -- health and versions -------------------------------------------------------------------

    def _es_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.elasticsearch_port}{path}"

    def _es_get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(self._es_url(path), timeout=5) as response:
            return json.loads(response.read())

    def _es_health(self) -> str | None:
        try:
            health = self._es_get("/_cluster/health")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"no answer on port {self.settings.elasticsearch_port} ({exc})"
        return None if health.get("status") in ("green", "yellow") else f"cluster {health}"

    def _es_version(self) -> str:
        nodes = self._es_get("/_nodes/_local")["nodes"]
        assert isinstance(nodes, dict)
        return str(next(iter(nodes.values()))["version"])

    def _kafka_health(self) -> str | None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        if not port_in_use(self.settings.kafka_port):
            return f"port {self.settings.kafka_port} not accepting connections"
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=f"localhost:{self.settings.kafka_port}",
                request_timeout_ms=3000,
                bootstrap_timeout_ms=3000,  # not 30 s when something else holds the port
                client_id="newsflow-stack",
            )
            try:
                admin.describe_cluster()
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            return f"broker not ready ({type(exc).__name__})"
        return None

    def _kafka_version(self) -> str:
        classpath = (self.kafka.home / "classpath.txt").read_text()
        match = re.search(r"kafka_2\.13-([\w.\-]+?)\.jar", classpath)
        return match[1] if match else "unknown"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), sig)
