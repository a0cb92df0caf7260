"""The benchmark's scenarios: one small declarative entry each.

A scenario is a request template. Placeholders are filled per request line by
``Context.values``: {name} an approved model, {word} a search word, {proposal} a past
proposal, {model}/{version}/{hash} the line's writer's own model and a version number never
used before, {open} an open proposal that the line's voter has not voted on. ``token``
sends the line's user's token. ``follow_next`` starts from the path and follows the answer's
``next`` link that many times, then loads the page it reached: with page numbers or with
cursors alike.

Writers: each wrk thread has its own pool of users, larger than its connections, and its
lines go round the pool, so requests in flight at once come from distinct users and no user
is shared by two threads.
"""

import hashlib
import json
from dataclasses import dataclass, field

# The targets: CPU ms/request (app + db + redis), req/s, p99 ms.
TARGETS = {
    "livez": (0.6, 3000, 15),
    "get-anon": (2.0, 900, 40),
    "get-token": (2.5, 700, 50),
    "search": (18, 120, 250),
    "page-first": (11, 180, 200),
    "page-deep": (11, 180, 200),
    "usage": (5, 340, 100),
    "register": (6.5, 270, 120),
    "vote": (5, 340, 100),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    path: str
    method: str = "GET"
    body: dict | None = None
    token: bool = False
    write: bool = False
    follow_next: int = 0
    sample_locks: bool = False

    @property
    def target(self):
        return TARGETS.get(self.name)


LIST_BY_NAME = "/api/v1/models/?ordering=name&page_size=100"

SCENARIOS = [
    Scenario("livez", "liveness /livez", "/livez"),
    Scenario("healthz", "health /healthz (db + redis)", "/healthz"),
    Scenario("get-anon", "get one model by name, anonymous", "/api/v1/models/{name}/"),
    Scenario("get-token", "get one model by name, token", "/api/v1/models/{name}/", token=True),
    Scenario("search", "search, a page of 100", "/api/v1/models/?search={word}&page_size=100"),
    Scenario("page-first", "first page of 100 by name", LIST_BY_NAME),
    # Page 50 today (49 "next" links from the first page); a cursor list needs no change.
    Scenario("page-deep", "deeper page of 100 by name", LIST_BY_NAME, follow_next=49),
    Scenario("usage", "record usage (token, distinct users)", "/api/v1/models/{name}/usage/",
             method="POST", body={"success": True, "duration_us": 1500}, token=True,
             write=True, sample_locks=True),
    Scenario("register", "register a new version (token, distinct users)", "/api/v1/models/",
             method="POST", token=True, write=True, sample_locks=True,
             body={"name": "{model}", "version": "{version}", "hash": "{hash}",
                   "size_bytes": 4096, "parameter_count": 1000, "category": "NLP",
                   "description": "A benchmark version.", "license": "MIT"}),
    Scenario("vote", "vote (distinct voters, open proposals)", "/api/v1/proposals/{open}/vote/",
             method="POST", body={"choice": "for"}, token=True, write=True),
    Scenario("stats", "registry stats", "/api/v1/stats/"),
    Scenario("fee-quote", "fee quote", "/api/v1/fees/calculate/", method="POST",
             body={"fee_type": "execution", "units": 1}),
    Scenario("proposal", "proposal detail", "/api/v1/proposals/{proposal}/"),
]
BY_NAME = {s.name: s for s in SCENARIOS}
READS = [s.name for s in SCENARIOS if not s.write]


@dataclass
class Context:
    """What the templates draw from, read from the seeded database at the start of a run."""

    names: list[str]
    words: list[str]
    proposals: list[int]
    # Per wrk thread: its users as (username, token secret, own model name).
    pools: list[list[tuple[str, str, str]]]
    # Per wrk thread: open proposals its voters have not voted on.
    open_proposals: list[list[int]]
    run_tag: str
    deep_paths: dict[str, str] = field(default_factory=dict)

    def values(self, thread: int, k: int) -> tuple[dict, str]:
        """The placeholders of line ``k`` of ``thread``, and that line's token."""
        pool = self.pools[thread]
        user, secret, model = pool[k % len(pool)]
        rounds = k // len(pool)
        opened = self.open_proposals[thread]
        # Voter i takes proposal (i + round): a new proposal every time round the pool, and
        # the voters in flight at once are on different proposals.
        proposal_open = opened[(k % len(pool) + rounds) % len(opened)] if opened else 0
        version = f"{self.run_tag}.{thread}.{k}"
        # Spread over the data with a multiplicative step, so that each thread's lines differ.
        spread = (k * 7919 + thread * 104729)
        return {
            "name": self.names[spread % len(self.names)],
            "word": self.words[spread % len(self.words)],
            "proposal": self.proposals[spread % len(self.proposals)] if self.proposals else 0,
            "model": model, "version": version,
            "hash": hashlib.sha256(f"{user}/{version}".encode()).hexdigest(),
            "open": proposal_open,
        }, secret


def fill(template, values: dict):
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    return template


def request_lines(scenario: Scenario, context: Context, thread: int, start: int,
                  count: int) -> list[str]:
    """The wrk lines (bench/wrk/scenario.lua's format) for lines start..start+count."""
    lines = []
    for k in range(start, start + count):
        values, secret = context.values(thread, k)
        path = context.deep_paths.get(scenario.name) or fill(scenario.path, values)
        body = json.dumps(fill(scenario.body, values)) if scenario.body is not None else "-"
        token = secret if scenario.token else "-"
        lines.append(f"{scenario.method}\t{path}\t{token}\t{body}")
    return lines
