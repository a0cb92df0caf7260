"""A whole user flow through a client generated from the live schema (``make fuzz`` runs it).

    python benchmarks_app/client_flow.py http://127.0.0.1:8000

``fuzz_api`` generates ``ai_registry_api_client`` with openapi-python-client from the server's
``/api/schema/`` and runs this with it on the path, against the demo data: tokens, account,
quote, register, search, detail, approval by a moderator, usage, an edit (and a stale one),
a proposal and a vote, lists,
fee and registry statistics, the ledger (with its credits), and error answers. Every answer
must have the status the flow expects and parse into the generated types; anything else is
printed and the exit status is 1.
"""

import sys
import uuid

from ai_registry_api_client import AuthenticatedClient, Client
from ai_registry_api_client import models as m
from ai_registry_api_client.api.account import account_ledger_list, account_retrieve
from ai_registry_api_client.api.audit_events import audit_events_list
from ai_registry_api_client.api.auth import auth_tokens_create, auth_tokens_list
from ai_registry_api_client.api.fees import (
    fees_calculate_create,
    fees_schedules_list,
    fees_stats_retrieve,
)
from ai_registry_api_client.api.models import (
    models_create,
    models_history_retrieve,
    models_list,
    models_retrieve,
    models_stats_retrieve,
    models_status_create,
    models_usage_create,
    models_versions_changes_list,
    models_versions_list,
    models_versions_partial_update,
    models_versions_retrieve,
)
from ai_registry_api_client.api.parameters import parameters_list
from ai_registry_api_client.api.proposals import (
    proposals_create,
    proposals_list,
    proposals_retrieve,
    proposals_vote_create,
    proposals_votes_list,
)
from ai_registry_api_client.api.stats import stats_retrieve

DEMO = {"carol": "carol-demo-pass", "alice": "alice-demo-pass",
        "moderator": "moderator-demo-pass"}


def main(base: str) -> int:
    failures = []
    calls = 0

    def expect(label, status, answer):
        nonlocal calls
        calls += 1
        if answer.status_code != status or answer.parsed is None:
            failures.append(f"{label}: {answer.status_code} (expected {status}), parsed "
                            f"{type(answer.parsed).__name__}: {answer.content[:300]!r}")
            return None
        return answer.parsed

    anonymous = Client(base_url=base)
    signed_in = {}
    for username, password in DEMO.items():
        token = expect(f"token for {username}", 201, auth_tokens_create.sync_detailed(
            client=anonymous, body=m.TokenCreateInputRequest(
                username=username, password=password, expires_in=3600, name="client flow")))
        if token is None:
            print("\n".join(failures))
            return 1
        signed_in[username] = AuthenticatedClient(base_url=base, token=token.token)
    carol, alice, moderator = signed_in["carol"], signed_in["alice"], signed_in["moderator"]

    expect("account", 200, account_retrieve.sync_detailed(client=carol))
    expect("quote", 200, fees_calculate_create.sync_detailed(
        client=anonymous, body=m.FeeCalculateInputRequest(
            fee_type=m.FeeTypeEnum.REGISTRATION, size_bytes=1024)))
    name = f"client-flow-{uuid.uuid4().hex[:8]}"
    expect("register", 201, models_create.sync_detailed(client=carol, body=(
        m.RegistrationInputRequest(name=name, version="1.0.0", hash_="ab" * 32,
                                   size_bytes=1024, parameter_count=1000,
                                   tags=["client", "flow"]))))
    expect("search", 200, models_list.sync_detailed(client=anonymous, search="bert"))
    expect("list", 200, models_list.sync_detailed(client=anonymous, page_size=100))
    expect("own pending version", 200, models_retrieve.sync_detailed(name, client=carol))
    expect("hidden from others", 404, models_retrieve.sync_detailed(name, client=anonymous))
    expect("approve", 200, models_status_create.sync_detailed(
        name, client=moderator, body=m.StatusChangeInputRequest(
            version="1.0.0", status=m.StatusEnum.APPROVED, reason="Checked")))
    expect("detail", 200, models_retrieve.sync_detailed(name, client=anonymous))
    expect("usage", 201, models_usage_create.sync_detailed(
        name, client=alice, body=m.UsageRequestInputRequest(success=True, duration_us=1200)))
    expect("history", 200, models_history_retrieve.sync_detailed(name, client=anonymous))
    expect("model statistics", 200, models_stats_retrieve.sync_detailed(name, client=anonymous))
    expect("versions", 200, models_versions_list.sync_detailed(name, client=anonymous))
    read = models_versions_retrieve.sync_detailed(name, "1.0.0", client=carol)
    expect("version", 200, read)
    etag = read.headers.get("ETag", "")
    expect("edit", 200, models_versions_partial_update.sync_detailed(
        name, "1.0.0", client=carol, if_match=etag,
        body=m.PatchedRegistrationEditInputRequest(description="Edited by the client.")))
    expect("stale edit", 412, models_versions_partial_update.sync_detailed(
        name, "1.0.0", client=carol, if_match=etag,
        body=m.PatchedRegistrationEditInputRequest(license_="mit")))
    expect("changes", 200, models_versions_changes_list.sync_detailed(name, "1.0.0",
                                                                      client=anonymous))
    proposal = expect("propose", 201, proposals_create.sync_detailed(
        client=alice, body=m.ParameterChangeProposalRequest(
            type_=m.ParameterChangeProposalTypeEnum.PARAMETER_CHANGE,
            title=f"Longer votes ({name})",
            payload=m.ParameterChangePayloadRequest(
                parameter=m.ParameterEnum.VOTING_PERIOD_SECONDS, value=700_000,
                reason="More time to read"))))
    if proposal is not None:
        expect("vote", 201, proposals_vote_create.sync_detailed(
            proposal.id, client=alice, body=m.VoteInputRequest(choice=m.ChoiceEnum.FOR)))
        expect("proposal", 200, proposals_retrieve.sync_detailed(proposal.id, client=alice))
        expect("votes", 200, proposals_votes_list.sync_detailed(proposal.id, client=anonymous))
    expect("proposals", 200, proposals_list.sync_detailed(client=anonymous))
    expect("fee statistics", 200, fees_stats_retrieve.sync_detailed(client=moderator))
    expect("registry statistics", 200, stats_retrieve.sync_detailed(client=anonymous))
    expect("fee schedules", 200, fees_schedules_list.sync_detailed(client=anonymous))
    expect("parameters", 200, parameters_list.sync_detailed(client=anonymous))
    expect("ledger, credits included", 200, account_ledger_list.sync_detailed(
        client=carol, page_size=100))
    expect("audit trail", 200, audit_events_list.sync_detailed(client=moderator))
    expect("tokens", 200, auth_tokens_list.sync_detailed(client=carol))
    expect("unknown model", 404, models_retrieve.sync_detailed("no-such-model",
                                                               client=anonymous))
    expect("bad token", 401, account_retrieve.sync_detailed(
        client=AuthenticatedClient(base_url=base, token="air_not-a-token")))
    expect("duplicate version", 409, models_create.sync_detailed(client=carol, body=(
        m.RegistrationInputRequest(name=name, version="1.0.0", hash_="ab" * 32,
                                   size_bytes=1024, parameter_count=1000))))
    if failures:
        print(f"{len(failures)} of {calls} calls failed:\n" + "\n".join(failures))
        return 1
    print(f"Generated client: {calls} calls, every answer as expected and parsed.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/")))
