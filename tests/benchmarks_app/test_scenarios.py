"""Request lines: distinct users in flight, no user shared by threads, every vote fresh."""

from benchmarks_app.scenarios import BY_NAME, SCENARIOS, TARGETS, Context, request_lines


def context(threads=2, pool=64, opened=40) -> Context:
    pools = [[(f"u{t}-{i}", f"s{t}-{i}", f"m{t}-{i}") for i in range(pool)]
             for t in range(threads)]
    return Context(names=["alpha", "beta", "gamma"], words=["model", "fast"], proposals=[7],
                   pools=pools,
                   open_proposals=[list(range(1000 * (t + 1), 1000 * (t + 1) + opened))
                                   for t in range(threads)], run_tag="r1")


def test_every_target_names_a_scenario():
    assert set(TARGETS) <= {s.name for s in SCENARIOS}
    assert all(s.target is None for s in SCENARIOS if s.name not in TARGETS)


def test_requests_in_flight_come_from_distinct_users_and_threads_share_none():
    c = context()
    users = [[c.values(t, k)[1] for k in range(500)] for t in range(2)]
    for t in range(2):
        for k in range(len(users[t]) - 16):
            assert len(set(users[t][k:k + 16])) == 16
    assert not set(users[0]) & set(users[1])


def test_every_vote_is_a_fresh_pair_until_the_proposals_run_out():
    c = context(pool=64, opened=40)
    for t in range(2):
        pairs = [(c.values(t, k)[1], c.values(t, k)[0]["open"]) for k in range(64 * 40)]
        assert len(set(pairs)) == len(pairs)


def test_register_lines_carry_new_versions_of_the_writers_own_model():
    c = context()
    lines = request_lines(BY_NAME["register"], c, 1, 10, 3)
    assert [line.split("\t")[0] for line in lines] == ["POST"] * 3
    assert '"version": "r1.1.10"' in lines[0] and '"name": "m1-10"' in lines[0]
    assert lines[0].split("\t")[2] == "s1-10"
    versions = {line.split('"version": "')[1].split('"')[0] for line in lines}
    assert len(versions) == 3


def test_anonymous_lines_send_no_token_and_reads_no_body():
    line = request_lines(BY_NAME["get-anon"], context(), 0, 0, 1)[0]
    method, path, token, body = line.split("\t")
    assert (method, token, body) == ("GET", "-", "-")
    assert path.startswith("/api/v1/models/") and path.endswith("/")


def test_a_followed_deep_path_replaces_the_template():
    c = context()
    c.deep_paths["page-deep"] = "/api/v1/models/?cursor=abc"
    line = request_lines(BY_NAME["page-deep"], c, 0, 0, 1)[0]
    assert line.split("\t")[1] == "/api/v1/models/?cursor=abc"
