"""The benchmark's table and JSON: per-round wrk figures and CPU into one row per scenario."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FLAT_RATIO = 1.3


@dataclass
class Round:
    """One wrk run of one scenario, with the server's CPU over the same window (seconds)."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    statuses: dict
    queries: int
    socket_errors: int
    cpu_app_s: float
    cpu_db_s: float
    cpu_redis_s: float


@dataclass
class Row:
    name: str
    label: str
    rounds: list[Round] = field(default_factory=list)
    target: tuple | None = None

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    def _per_request(self, value: float) -> float:
        return value / self.requests if self.requests else 0.0

    def figures(self) -> dict:
        rounds = self.rounds
        requests = self.requests
        duration = sum(r.duration_s for r in rounds)
        cpu = {part: self._per_request(sum(getattr(r, f"cpu_{part}_s") for r in rounds)) * 1000
               for part in ("app", "db", "redis")}
        statuses: dict = {}
        for r in rounds:
            for status, n in r.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        figures = {
            "scenario": self.name, "label": self.label, "requests": requests,
            "req_s": requests / duration if duration else 0.0,
            # p50: the rounds' mean weighted by requests; p99: the worst round's.
            "p50_ms": (sum(r.p50_ms * r.requests for r in rounds) / requests
                       if requests else 0.0),
            "p99_ms": max((r.p99_ms for r in rounds), default=0.0),
            "non2xx": sum(r.non2xx for r in rounds), "statuses": statuses,
            "socket_errors": sum(r.socket_errors for r in rounds),
            "cpu_ms": {**cpu, "total": sum(cpu.values())},
            "queries_per_request": self._per_request(sum(r.queries for r in rounds)),
            "target": None, "met": None,
            "rounds": [asdict(r) for r in rounds],
        }
        if self.target:
            cpu_target, rate_target, p99_target = self.target
            figures["target"] = {"cpu_ms": cpu_target, "req_s": rate_target,
                                 "p99_ms": p99_target}
            figures["met"] = (figures["cpu_ms"]["total"] <= cpu_target
                              and figures["req_s"] >= rate_target
                              and figures["p99_ms"] <= p99_target
                              and figures["non2xx"] == 0 and figures["socket_errors"] == 0)
        return figures


COLUMNS = [("scenario", "<", 11), ("req/s", ">", 7), ("p50 ms", ">", 7), ("p99 ms", ">", 7),
           ("non-2xx", ">", 7), ("app", ">", 6), ("db", ">", 6), ("redis", ">", 6),
           ("CPU ms", ">", 6), ("q/req", ">", 5), ("target cpu/rps/p99", "<", 18),
           ("met", "<", 7)]


def _cells(f: dict) -> list[str]:
    target = f["target"]
    if target:
        goal = f"{target['cpu_ms']:g} / {target['req_s']} / {target['p99_ms']}"
        met = "met" if f["met"] else "NOT met"
    else:
        goal, met = "-", "-"
    cpu = f["cpu_ms"]
    return [f["scenario"], f"{f['req_s']:.0f}", f"{f['p50_ms']:.1f}", f"{f['p99_ms']:.1f}",
            str(f["non2xx"] + f["socket_errors"]), f"{cpu['app']:.2f}", f"{cpu['db']:.2f}",
            f"{cpu['redis']:.2f}", f"{cpu['total']:.2f}", f"{f['queries_per_request']:.1f}",
            goal, met]


def table(figures: list[dict]) -> str:
    """The fixed-width table printed at the end of a run."""
    def line(cells):
        return "  ".join(f"{cell:{align}{width}}" for cell, (_, align, width)
                         in zip(cells, COLUMNS, strict=True)).rstrip()

    out = [line([name for name, _, _ in COLUMNS]), line(["-" * w for _, _, w in COLUMNS])]
    out += [line(_cells(f)) for f in figures]
    return "\n".join(out)


def markdown_table(figures: list[dict]) -> str:
    """The same table in Markdown, for the README."""
    head = ["scenario", "req/s", "p50 ms", "p99 ms", "non-2xx", "CPU ms/req app / db / redis",
            "queries/req", "target CPU / req/s / p99", "met"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in figures:
        c = _cells(f)
        rows.append("| " + " | ".join([c[0], c[1], c[2], c[3], c[4],
                                       f"{c[8]} ({c[5]} / {c[6]} / {c[7]})", c[9], c[10],
                                       c[11]]) + " |")
    return "\n".join(rows)


def lock_lines(locks: dict) -> list[str]:
    out = []
    for scenario, report in locks.items():
        out.append(f"Lock waits during {scenario}: {report['samples_with_a_wait']} of "
                   f"{report['samples']} samples ({report['share']:.1%}) saw a request waiting "
                   f"on another request's lock.")
        for entry in report["on"][:5]:
            out.append(f"    {entry['samples']:>5}  {entry['what']}")
    return out


def compare(small: list[dict], large: list[dict], sizes: tuple[int, int]) -> tuple[list, str]:
    """p50 at the larger size over p50 at the smaller, and queries/request at both.

    The CPU ratio is shown beside it: on a busy machine p50 is mostly queueing, while CPU
    per request says whether the work itself grows with the data.
    """
    by_name = {f["scenario"]: f for f in small}
    rows = []
    for f in large:
        base = by_name.get(f["scenario"])
        if base is None:
            continue
        ratio = f["p50_ms"] / base["p50_ms"] if base["p50_ms"] else float("inf")
        same_queries = round(f["queries_per_request"], 1) == round(base["queries_per_request"], 1)
        rows.append({"scenario": f["scenario"], "p50_small_ms": base["p50_ms"],
                     "p50_large_ms": f["p50_ms"], "ratio": ratio,
                     "cpu_ratio": (f["cpu_ms"]["total"] / base["cpu_ms"]["total"]
                                   if base["cpu_ms"]["total"] else float("inf")),
                     "queries_small": base["queries_per_request"],
                     "queries_large": f["queries_per_request"],
                     "met": ratio <= FLAT_RATIO and same_queries})
    small_n, large_n = sizes
    head = (f"{'scenario':<11}  {f'p50 @{small_n}':>12}  {f'p50 @{large_n}':>12}  {'ratio':>5}  "
            f"{'q/req':>11}  {'CPU ratio':>9}  met (ratio <= {FLAT_RATIO}, same queries)")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['scenario']:<11}  {r['p50_small_ms']:>12.1f}  {r['p50_large_ms']:>12.1f}"
                     f"  {r['ratio']:>5.2f}  {r['queries_small']:>5.1f}/{r['queries_large']:<5.1f}"
                     f"  {r['cpu_ratio']:>9.2f}  {'met' if r['met'] else 'NOT met'}")
    return rows, "\n".join(lines)


def write_json(directory: Path, stem: str, document: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(document, indent=2, default=_default) + "\n")
    return path


def _default(value):
    if isinstance(value, Round):
        return asdict(value)
    raise TypeError(type(value).__name__)
