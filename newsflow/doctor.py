"""``newsflow doctor``: can this machine run newsflow, and if not, what to do about it.

One finding per check, each problem with its fix. The checks are small functions of what they
look at (a version, a lock file's text, the installed versions, a modes directory, the ports in
use), so tests hand them real files and sockets; ``findings`` gathers those facts from this
machine and the settings. Kafka and Elasticsearch not running is reported but is no failure
unless services are required: the quickstart asks the doctor before ``newsflow stack up``, CI
after it.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

from newsflow.settings import NlpSettings, Settings, TranslationSettings

MIN_PYTHON = (3, 11)
#: The versions CI tested together, shipped in the package (in a checkout: a link to
#: deploy/requirements.lock), so an installed wheel can be checked against them too.
LOCK = Path(__file__).with_name("requirements.lock")
#: An English sentence long enough for the language detector to answer (it loads its models
#: lazily, so only a detection shows they are there).
_ENGLISH = "The government said on Tuesday that the new rules would take effect next month."
_LISTED = 5
#: Lock lines only the dev extra (``# dev``) or the installer (``# installer``) needs.
OPTIONAL_LABELS = ("dev", "installer")

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """What one check found and, unless all is well, what to do about it."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"ok": "ok", "warn": "warn", "fail": "FAIL"}[self.status]
        return f"{mark:<4}  {self.check:<20} {self.detail}" + (f" — {self.fix}" if self.fix else "")


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _pip_install(*packages: str, lock: Path = LOCK) -> str:
    """The command that installs ``packages`` into this environment at the locked versions."""
    constraints = f" -c {lock.resolve()}" if lock.exists() else ""
    return f"{sys.executable} -m pip install{constraints} {' '.join(packages)}"


# -- checks: each a function of what it looks at ------------------------------------------------


def check_python(version_info: tuple[int, ...]) -> Finding:
    found = ".".join(str(part) for part in version_info)
    if version_info[:2] >= MIN_PYTHON:
        return Finding("python", "ok", f"Python {found}")
    return Finding(
        "python",
        "fail",
        f"Python {found}; newsflow needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer",
        "install python3.11 (Debian 12 ships it) and create the virtual environment with it",
    )


@dataclass(frozen=True)
class Pin:
    """A locked version; ``required`` unless the lock labels it ``# dev`` or ``# installer``."""

    version: str
    required: bool = True


def read_lock(text: str) -> dict[str, Pin]:
    """Canonical name -> pin of each ``name==version`` line that applies here.

    Runtime packages must be installed; the dev extra's tools and pip, which a wheel installed
    without them lacks, are compared only where they are installed.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, Pin] = {}
    for line in text.splitlines():
        line, _, label = (part.strip() for part in line.partition("#"))
        if not line:
            continue
        requirement = Requirement(line)  # InvalidRequirement is a ValueError
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if len(exact) != 1:
            raise ValueError(f"{line!r} does not pin one version")
        pins[canonicalize_name(requirement.name)] = Pin(exact[0], label not in OPTIONAL_LABELS)
    return pins


def check_packages(
    pins: Mapping[str, Pin], installed: Mapping[str, str | None], lock: Path
) -> Finding:
    """Installed versions against the lock: a runtime package missing fails, another version
    of any package warns."""
    from packaging.utils import canonicalize_version

    missing = sorted(name for name, pin in pins.items() if pin.required and not installed.get(name))
    differ = sorted(
        name
        for name, pin in pins.items()
        if (found := installed.get(name))
        and canonicalize_version(found) != canonicalize_version(pin.version)
    )
    fix = f"install the tested versions: {_pip_install(*missing, *differ, lock=lock)}"
    if missing:
        also = f"; {len(differ)} more differ from the lock" if differ else ""
        locked = [f"{name} {pins[name].version}" for name in missing]
        return Finding("packages", "fail", f"not installed: {_listing(locked)}{also}", fix)
    compared = sum(bool(installed.get(name)) for name in pins)
    if differ:
        versions = [f"{name} {installed[name]} (lock {pins[name].version})" for name in differ]
        return Finding(
            "packages",
            "warn",
            f"{len(differ)} of {compared} differ from {lock}: {_listing(versions)}",
            fix,
        )
    return Finding("packages", "ok", f"{compared} installed packages as pinned in {lock}")


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def check_lock(lock: Path) -> Finding:
    """This environment's packages against a lock file (none: nothing to compare)."""
    if not lock.exists():
        return Finding(
            "packages",
            "warn",
            f"no lock to compare against ({lock} is missing from this installation)",
            "install newsflow from a checkout, or from a wheel built in one, with "
            "`pip install -c deploy/requirements.lock`",
        )
    lock = lock.resolve()
    try:
        pins = read_lock(lock.read_text(encoding="utf-8"))
    except ValueError as exc:
        return Finding(
            "packages",
            "fail",
            f"cannot read {lock}: {exc}",
            "regenerate it: python3 deploy/lock_requirements.py",
        )
    return check_packages(pins, {name: _installed(name) for name in pins}, lock)


def check_spacy(nlp: NlpSettings) -> list[Finding]:
    """The English model with the components the pipeline runs, and each source-language model."""
    from pipeline.entities import EntityExtraction

    english = EntityExtraction(
        model=nlp.spacy_model,
        components=nlp.spacy_components,
        batch_size=nlp.batch_size,
        max_chars=nlp.max_ner_chars,
    )
    findings = [
        _model_loads(
            "spacy",
            nlp.spacy_model,
            english.load,
            f"{nlp.spacy_model} loads ({', '.join(nlp.spacy_components)})",
        )
    ]
    for language, model in sorted(nlp.source_models.items()):
        findings.append(
            _model_loads(
                f"spacy {language}",
                model,
                partial(_source_model, model),
                f"{model} loads (entities of the original {language} text)",
            )
        )
    return findings


def _source_model(model: str) -> object:
    """A source-language model as the entities stage loads it: its NER alone."""
    from pipeline.entities import load_model, ner_only

    return ner_only(load_model(model, "NEWSFLOW_NLP__SOURCE_MODELS"))


def _model_loads(check: str, model: str, load: Callable[[], object], loaded: str) -> Finding:
    try:
        load()
    except (RuntimeError, ImportError, ValueError) as exc:  # absent, broken, or lacking a part
        return Finding(check, "fail", str(exc), _pip_install(model))
    return Finding(check, "ok", loaded)


def check_lingua(nlp: NlpSettings) -> Finding:
    from pipeline.language import LanguageDetection

    detector = LanguageDetection(nlp.languages, nlp.min_language_confidence, nlp.max_language_chars)
    try:
        detector.load()
        guess = detector.detect(_ENGLISH, None)
    except ImportError as exc:
        return Finding(
            "lingua",
            "fail",
            f"cannot import lingua ({exc})",
            _pip_install("lingua-language-detector"),
        )
    return Finding(
        "lingua",
        "ok",
        f"lingua {version('lingua-language-detector')}, {len(nlp.languages)} languages; an "
        f"English test sentence is detected as {guess.code}",
    )


def check_translation(
    translation: TranslationSettings, languages: Sequence[str], engine: str | None
) -> list[Finding]:
    """With Apertium (``engine``: its lt-proc, if any): a path to English per detected language.

    A language with no installed path fails when Debian has the pairs for one; any other is
    indexed untranslated by design, and said so.
    """
    if translation.backend != "apertium":
        return [
            Finding(
                "translation",
                "ok",
                f"backend {translation.backend}: not checked here; the pipeline checks it at start",
            )
        ]
    from pipeline.translation import TARGET, pair_path
    from pipeline.translators.apertium import DEBIAN_PAIRS, installed_modes

    everything = f"sudo apt-get install apertium {' '.join(DEBIAN_PAIRS.values())}"
    modes_dir = translation.apertium_modes_dir
    if engine is None:
        return [Finding("apertium", "fail", "not installed (no lt-proc on PATH)", everything)]
    modes = installed_modes(modes_dir) if modes_dir.is_dir() else {}
    if not modes:
        return [
            Finding(
                "apertium",
                "fail",
                f"no language pairs in {modes_dir}",
                f"{everything}, or point NEWSFLOW_TRANSLATION__APERTIUM_MODES_DIR at its modes",
            )
        ]
    findings, untranslated = [], []
    for language in languages:
        if language == TARGET:
            continue
        found = pair_path(modes, language, TARGET, translation.pivot_language)
        expected = pair_path(DEBIAN_PAIRS, language, TARGET, translation.pivot_language)
        if found:
            findings.append(Finding(f"apertium {language}", "ok", "→".join(found)))
        elif expected:
            packages = " ".join(DEBIAN_PAIRS[leg] for leg in itertools.pairwise(expected))
            findings.append(
                Finding(
                    f"apertium {language}",
                    "fail",
                    f"no modes for {'→'.join(expected)} in {modes_dir}",
                    f"sudo apt-get install {packages}",
                )
            )
        else:
            untranslated.append(language)
    if untranslated:
        findings.append(
            Finding(
                "apertium others",
                "ok",
                f"{', '.join(untranslated)}: no Apertium path to English; indexed untranslated "
                "(translation.status = unsupported)",
            )
        )
    return findings


def check_stack_files(deploy_local: Path) -> Finding:
    """The local stack runs from a checkout: its poms and configs are not in the package."""
    if deploy_local.is_dir():
        return Finding("local stack", "ok", f"definitions in {deploy_local}")
    return Finding(
        "local stack",
        "warn",
        f"no {deploy_local}: `newsflow stack up` runs from a clone of the repository",
        "use a clone for the local stack, or run Kafka and Elasticsearch elsewhere "
        "(deploy/docker-compose.yml) and set NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS and "
        "NEWSFLOW_ELASTICSEARCH__URL",
    )


def check_java(java: str | None, major: int | None, required: bool) -> Finding:
    """Java 17+ runs the local stack (``required`` where the stack can run from here)."""
    from newsflow.stack import JDK_FIX, MIN_JAVA

    problem: Status = "fail" if required else "warn"
    if java is None:
        return Finding("java", problem, "not found (no JAVA_HOME, no java on PATH)", JDK_FIX)
    if major is None or major < MIN_JAVA:
        found = f"Java {major}" if major else "no Java version"
        return Finding(
            "java", problem, f"{java} reports {found}; the local stack needs {MIN_JAVA}+", JDK_FIX
        )
    return Finding("java", "ok", f"Java {major} ({java})")


def check_maven(mvn: str | None, required: bool) -> Finding:
    from newsflow.stack import MAVEN_FIX

    if mvn is None:
        return Finding(
            "maven",
            "fail" if required else "warn",
            "mvn not found on PATH; the local stack resolves Kafka and Elasticsearch with it",
            MAVEN_FIX,
        )
    return Finding("maven", "ok", mvn)


def check_ports(
    service: str, ports: Mapping[int, str], busy: Collection[int], ours: int | None, answers: bool
) -> Finding:
    """The ports ``newsflow stack up`` binds for a service: free, or held by our own server.

    ``ours`` is the pid of this checkout's running server; ``answers`` says whether a server of
    the same kind answers on them (Docker Compose, another checkout), which newsflow can use.
    """
    check = f"{service} ports"
    listed = ", ".join(str(port) for port in ports)
    taken = [port for port in ports if port in busy]
    if ours is not None:
        return Finding(check, "ok", f"{listed}: the local stack's {service} (pid {ours})")
    if not taken:
        return Finding(check, "ok", f"{listed} free")
    held = ", ".join(str(port) for port in taken)
    move = " or ".join(f"NEWSFLOW_STACK__{ports[port].upper()}" for port in taken)
    if answers:
        return Finding(
            check,
            "warn",
            f"{held}: {service} answers there, not started by this local stack (Docker "
            "Compose? another checkout?)",
            f"newsflow can use it; `newsflow stack up` cannot start its own until it stops, or "
            f"move the local stack with {move}",
        )
    return Finding(
        check,
        "fail",
        f"{held} in use by another process, so `newsflow stack up` cannot start {service}",
        f"stop that process (`ss -ltnp` names it) or choose free ports with {move}",
    )


def check_service(name: str, healthy: bool, detail: str, setting: str, required: bool) -> Finding:
    """A server newsflow talks to; not running is a failure only when ``required``."""
    if healthy:
        return Finding(name, "ok", detail)
    if required:
        return Finding(
            name, "fail", detail, f"start it with `newsflow stack up`, or point {setting} at one"
        )
    return Finding(name, "warn", f"not running ({detail})", "start with `newsflow stack up`")


# -- glue: the facts of this machine -----------------------------------------------------------


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """The clients log every refused connection; the finding says it once, with the fix."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def findings(settings: Settings, require_services: bool = False) -> Iterator[Finding]:
    """Every check, in the order a new machine needs them fixed, as each completes."""
    from newsflow.stack import DEPLOY_LOCAL, LocalStack, java_executable, java_major, port_in_use
    from pipeline.endpoint import elasticsearch_check, kafka_check

    yield check_python(sys.version_info[:3])
    yield check_lock(LOCK)
    yield from check_spacy(settings.nlp)
    yield check_lingua(settings.nlp)
    yield from check_translation(
        settings.translation, settings.nlp.languages, shutil.which("lt-proc")
    )
    local = DEPLOY_LOCAL.is_dir()
    yield check_stack_files(DEPLOY_LOCAL)
    java = java_executable()
    yield check_java(java, java_major(java) if java else None, required=local)
    yield check_maven(shutil.which("mvn"), required=local)
    with _quiet("kafka", "elastic_transport"):
        for service in LocalStack(settings.stack, progress=lambda _: None).services:
            ours = service.running_pid()
            busy = {port for port in service.ports if port_in_use(port)}
            answers = bool(busy) and ours is None and service.health() is None
            yield check_ports(service.name, service.ports, busy, ours, answers)
        timeout = settings.observability.probe_timeout_seconds
        kafka = kafka_check(settings.kafka, timeout)
        yield check_service(
            "kafka", kafka.ok, kafka.detail, "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS", require_services
        )
        es = elasticsearch_check(settings.elasticsearch, timeout)
        yield check_service(
            "elasticsearch", es.ok, es.detail, "NEWSFLOW_ELASTICSEARCH__URL", require_services
        )


def summary(results: Sequence[Finding]) -> str:
    failed = [f.check for f in results if f.status == "fail"]
    warned = sum(f.status == "warn" for f in results)
    notes = f" ({warned} warning{'s' * (warned != 1)})" if warned else ""
    if failed:
        return f"{len(failed)} problem(s): {', '.join(failed)}{notes}; fix them as shown"
    return f"ready: no problems{notes}"
