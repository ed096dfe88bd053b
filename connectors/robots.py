"""robots.txt: may our crawler fetch this URL? One cached answer per origin, thread-safe.

Follows RFC 9309: a robots.txt that does not exist (4xx) allows everything; one that cannot be
fetched (5xx, network failure) disallows everything for a while, because the site may be
overloaded and the rules unknown; a previously fetched copy is used instead when there is one.
Rules are matched as the RFC says and ``urllib.robotparser`` does not: groups for our product
token (else ``*``) merged, the longest matching path wins (``Allow`` on a tie), ``*`` and ``$``
wildcards understood.

The cache does not fetch by itself: the caller passes a ``download`` function (the guarded
fetcher, without a robots check for robots.txt itself), so this module stays free of I/O.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

#: How long a robots.txt is trusted (RFC 9309 asks for at most a day).
DEFAULT_TTL_SECONDS = 24 * 3600.0
#: How long an unreachable robots.txt keeps the site closed before we ask again.
DEFAULT_UNREACHABLE_TTL_SECONDS = 600.0
#: Origins remembered at once; expired ones, then the oldest, are dropped beyond this.
DEFAULT_MAX_ORIGINS = 10_000
#: Characters left as they are when rules and paths are brought to one percent-encoding.
_PATH_SAFE = "/?=&;:@!$'()*+,~"


class Outcome(enum.Enum):
    FOUND = "found"  # 2xx: parse the body
    UNAVAILABLE = "unavailable"  # 4xx, or too many redirects: no rules, everything allowed
    UNREACHABLE = "unreachable"  # 5xx, 429, network failure: everything disallowed for a while


@dataclass(frozen=True)
class RobotsFile:
    outcome: Outcome
    body: bytes = b""


#: Fetches a robots.txt URL; must not raise.
Download = Callable[[str], RobotsFile]


def robots_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/robots.txt"


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched on: ``newsflow`` in ``newsflow/0.1 (…)``."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


def _normalize(path: str) -> str:
    return quote(unquote(path), safe=_PATH_SAFE)


@dataclass(frozen=True)
class Rule:
    allow: bool
    #: The rule's length: the longest matching rule wins (RFC 9309 2.2.2).
    length: int
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, allow: bool, value: str) -> Rule:
        """``value`` as written: ``*`` matches anything, a final ``$`` ends the path."""
        anchored = value.endswith("$")
        path = _normalize(value.removesuffix("$"))
        regex = ".*".join(re.escape(part) for part in path.split("*"))
        return cls(allow, len(value), re.compile(regex + ("$" if anchored else "")))

    def matches(self, target: str) -> bool:
        return self.pattern.match(target) is not None


@dataclass(frozen=True)
class Rules:
    """The groups of one robots.txt, by lower-case product token (``*`` for everyone else)."""

    groups: Mapping[str, tuple[Rule, ...]]

    def allows(self, agent: str, url: str) -> bool:
        parts = urlsplit(url)
        target = _normalize((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        if target == "/robots.txt":
            return True
        token = agent.lower()
        rules = self.groups[token] if token in self.groups else self.groups.get("*", ())
        matching = [rule for rule in rules if rule.matches(target)]
        if not matching:
            return True
        best = max(matching, key=lambda rule: (rule.length, rule.allow))
        return best.allow


ALLOW_ALL = Rules({})
DISALLOW_ALL = Rules({"*": (Rule.parse(allow=False, value="/"),)})


def parse_robots(text: str) -> Rules:
    """Groups of ``User-agent`` lines and the ``Allow``/``Disallow`` rules that follow them."""
    groups: dict[str, list[Rule]] = {}
    agents: list[str] = []
    in_rules = False
    for line in text.lstrip("\ufeff").splitlines():
        key, colon, value = line.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if not colon:
            continue
        if key == "user-agent":
            if in_rules:  # a User-agent after rules starts a new group
                agents, in_rules = [], False
            agents.append(agent_token(value).lower())
            groups.setdefault(agents[-1], [])
        elif key in ("allow", "disallow") and agents:
            in_rules = True
            if value:  # an empty Disallow allows everything; an empty Allow says nothing
                rule = Rule.parse(key == "allow", value)
                for agent in agents:
                    groups[agent].append(rule)
    return Rules({agent: tuple(rules) for agent, rules in groups.items()})


def rules_for(robots: RobotsFile) -> Rules:
    if robots.outcome is Outcome.FOUND:
        return parse_robots(robots.body.decode("utf-8", "replace"))
    return DISALLOW_ALL if robots.outcome is Outcome.UNREACHABLE else ALLOW_ALL


@dataclass
class _Entry:
    rules: Rules
    outcome: Outcome
    expires: float


class RobotsCache:
    """Per-origin robots.txt rules, fetched once per TTL even when many threads ask at once."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        unreachable_ttl: float = DEFAULT_UNREACHABLE_TTL_SECONDS,
        max_origins: int = DEFAULT_MAX_ORIGINS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._unreachable_ttl = unreachable_ttl
        self._max_origins = max_origins
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._origin_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def check(self, url: str, user_agent: str, download: Download) -> str | None:
        """None when ``user_agent`` may fetch ``url``, else why not (for the error message)."""
        origin_robots = robots_url(url)
        with self._lock:
            origin_lock = self._origin_locks.setdefault(origin_robots, threading.Lock())
        with origin_lock:  # one download per origin; the others wait for its answer
            entry = self._fresh(origin_robots) or self._refresh(origin_robots, download)
        agent = agent_token(user_agent)
        if entry.rules.allows(agent, url):
            return None
        if entry.outcome is Outcome.UNREACHABLE:
            return (
                f"{origin_robots} could not be fetched (server error or unreachable), which"
                f" means the whole site is closed until we try again in"
                f" {self._unreachable_ttl:g} s"
            )
        return f"{origin_robots} disallows it for {agent}"

    def _fresh(self, key: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry if entry and entry.expires > self._clock() else None

    def _refresh(self, key: str, download: Download) -> _Entry:
        robots = download(key)
        now = self._clock()
        with self._lock:
            stale = self._entries.get(key)
        if robots.outcome is Outcome.UNREACHABLE:
            # RFC 9309 2.4: keep obeying the last rules we saw rather than closing the site.
            if stale and stale.outcome is not Outcome.UNREACHABLE:
                entry = _Entry(stale.rules, stale.outcome, now + self._unreachable_ttl)
            else:
                entry = _Entry(rules_for(robots), robots.outcome, now + self._unreachable_ttl)
        else:
            entry = _Entry(rules_for(robots), robots.outcome, now + self._ttl)
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = entry
            self._evict(now)
        return entry

    def _evict(self, now: float) -> None:
        if len(self._entries) <= self._max_origins:
            return
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            del self._entries[key]
            self._origin_locks.pop(key, None)
        while len(self._entries) > self._max_origins:
            oldest = next(iter(self._entries))
            del self._entries[oldest]
            self._origin_locks.pop(oldest, None)
