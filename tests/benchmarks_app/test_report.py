"""The table and JSON of a run, and the bench command's argument errors."""

import json

import pytest
from django.core.management import CommandError, call_command

from benchmarks_app.management.commands.bench import SizeRun, schedule
from benchmarks_app.report import Round, Row, compare, lock_lines, markdown_table, table, write_json


def a_round(requests=1000, p50=10.0, p99=40.0, non2xx=0, queries=3000, app=2.0, db=1.0,
            redis=0.5):
    return Round(requests=requests, duration_s=10.0, p50_ms=p50, p99_ms=p99, non2xx=non2xx,
                 statuses={"409": non2xx} if non2xx else {}, queries=queries, socket_errors=0,
                 cpu_app_s=app, cpu_db_s=db, cpu_redis_s=redis)


def test_rounds_combine_into_one_row():
    row = Row("get-anon", "get", [a_round(p50=10, p99=40), a_round(requests=3000, p50=20, p99=30,
                                                                    queries=9000)],
              target=(2.0, 100, 50))
    f = row.figures()
    assert f["requests"] == 4000
    assert f["req_s"] == 200
    assert f["p50_ms"] == pytest.approx(17.5)  # weighted by requests
    assert f["p99_ms"] == 40  # the worst round
    assert f["cpu_ms"]["app"] == pytest.approx(1.0)  # 4 s over 4000 requests
    assert f["cpu_ms"]["total"] == pytest.approx(1.75)
    assert f["queries_per_request"] == 3
    assert f["met"] is True


@pytest.mark.parametrize("change", [{"app": 20.0}, {"requests": 10, "queries": 30},
                                    {"p99": 60.0}, {"non2xx": 1}])
def test_any_missed_figure_or_a_non_2xx_fails_the_target(change):
    f = Row("x", "x", [a_round(**change)], target=(2.0, 100, 50)).figures()
    assert f["met"] is False


def test_table_lines_up_and_says_met_or_not():
    rows = [Row("livez", "l", [a_round()], target=(5, 10, 100)).figures(),
            Row("stats", "s", [a_round(non2xx=2)]).figures()]
    text = table(rows).splitlines()
    assert text[0].split()[:4] == ["scenario", "req/s", "p50", "ms"]
    # Right-aligned columns end where their dashes end.
    assert text[0].index("req/s") + len("req/s") == text[1].index(" ", len("-" * 11) + 2)
    assert text[2].split()[0] == "livez" and text[2].endswith("met")
    assert " 2 " in text[3] and text[3].rstrip().endswith("-")
    assert markdown_table(rows).count("\n") == 3


def test_lock_lines_and_compare():
    lines = lock_lines({"usage": {"samples": 50, "samples_with_a_wait": 5, "share": 0.1,
                                  "on": [{"what": "registry_site_auditchainhead", "samples": 7}]}})
    assert "5 of 50 samples (10.0%)" in lines[0]
    assert "registry_site_auditchainhead" in lines[1]
    small = [Row("get-anon", "g", [a_round(p50=10)]).figures()]
    large = [Row("get-anon", "g", [a_round(p50=14)]).figures()]
    rows, text = compare(small, large, (1000, 100000))
    assert rows[0]["ratio"] == pytest.approx(1.4)
    assert rows[0]["met"] is False
    assert "NOT met" in text
    rows, _ = compare(small, [Row("get-anon", "g", [a_round(p50=12)]).figures()], (1, 2))
    assert rows[0]["met"] is True


def test_json_is_written_under_the_results_directory(tmp_path):
    path = write_json(tmp_path / "results", "20260101T000000Z-1000", {"rounds": [a_round()]})
    assert path.parent == tmp_path / "results"
    assert json.loads(path.read_text())["rounds"][0]["requests"] == 1000


@pytest.mark.parametrize("arguments, message", [
    (["--compare", "1000"], "--compare takes two"),
    (["--compare", "1000,abc"], "--compare takes two"),
    (["--compare", "5,5"], "--compare takes two"),
    (["--models", "0"], "--models must be at least 1"),
    (["--duration", "-1"], "--duration must be positive"),
    (["--duration", "0"], "--duration must be positive"),
    (["--rounds", "0"], "--rounds must be at least 1"),
    (["--threads", "4", "--connections", "2"], "--connections must be at least --threads"),
    (["--worker-class", "eventlet"], "--worker-class is sync or gthread"),
    (["--scenarios", "livez,nope"], "Unknown scenario(s): nope"),
    (["--compare", "10,20", "--scenarios", "usage"], "--compare runs read scenarios only"),
    (["--database-prefix", "ai_registry"], "must contain 'bench'"),
    (["--threads", "16", "--connections", "16"], "exceed the 512 seeded writers"),
])
def test_bad_arguments_stop_before_anything_starts(arguments, message, monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("the arguments were accepted and a run started")

    monkeypatch.setattr(SizeRun, "__enter__", started)
    with pytest.raises(CommandError) as refused:
        call_command("bench", *arguments)
    assert message in str(refused.value)


def test_compare_alternates_the_sizes_scenario_by_scenario():
    rounds = schedule(["livez", "get-anon"], (1000, 100000), 2)
    assert rounds == [
        [("livez", 1000), ("livez", 100000), ("get-anon", 1000), ("get-anon", 100000)],
        [("get-anon", 100000), ("get-anon", 1000), ("livez", 100000), ("livez", 1000)],
    ]
    # One size: the scenarios in turn, reversed every other round, as before.
    assert schedule(["a", "b", "c"], (10,), 3) == [
        [("a", 10), ("b", 10), ("c", 10)], [("c", 10), ("b", 10), ("a", 10)],
        [("a", 10), ("b", 10), ("c", 10)]]
