"""The benchmark command refuses every database but a PostgreSQL one named *bench*."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from models_app.management.commands.benchmark_registry import refusal


def test_refuses_sqlite():
    reason = refusal("sqlite", "/srv/registry/db.sqlite3")
    assert "PostgreSQL only" in reason
    assert "make benchmark" in reason


def test_refuses_a_postgresql_database_not_named_bench():
    reason = refusal("postgresql", "ai_registry")
    assert "'ai_registry'" in reason
    assert "contains 'bench'" in reason
    assert "DATABASE_URL=postgres://postgres@127.0.0.1:5432/ai_registry_bench" in reason


def test_accepts_a_bench_database():
    assert refusal("postgresql", "ai_registry_bench") is None


def test_command_refuses_the_test_database_before_touching_it():
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "postgresql" and "bench" in name:
        pytest.skip("The test database itself is a bench database.")
    with pytest.raises(CommandError) as refused:
        call_command("benchmark_registry", "--rows", "10")
    assert "bench" in str(refused.value)
