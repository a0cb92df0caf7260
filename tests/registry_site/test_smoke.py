def test_token_account_and_quote(anon_client, user):
    created = anon_client.post(
        "/api/v1/auth/tokens/", {"username": "user", "password": "a-Str0ng-test-pass"},
        format="json",
    )
    assert created.status_code == 201, created.content
    secret = created.json()["token"]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    account = anon_client.get("/api/v1/account/")
    assert account.status_code == 200
    assert account.json()["balance"] == 1_000_000
    quote = anon_client.post("/api/v1/fees/calculate/",
                             {"fee_type": "registration", "size_bytes": 1024}, format="json")
    assert quote.json()["amount"] == 2024
