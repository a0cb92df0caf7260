"""The pure fee formulas of SPEC 4.1: every method, the bounds, and refused schedules."""

import ast
import sys
from pathlib import Path

import pytest

import fees_app.calculator
from fees_app.calculator import (
    MAX_UNIT_FEE,
    FeeMethod,
    FeeTerms,
    calculate_fee,
    integer_ln,
)
from fees_app.inputs import schedule_errors

# The default schedules of SPEC 4.1.
REGISTRATION = FeeTerms("linear", base_fee=1000, unit_fee=1, min_fee=1000, max_fee=1_000_000)
EXECUTION = FeeTerms("fixed", base_fee=100, unit_fee=1, min_fee=1, max_fee=1_000_000)
STORAGE = FeeTerms("linear", base_fee=0, unit_fee=1, min_fee=0, max_fee=1_000_000)
PROPOSAL = FeeTerms("fixed", base_fee=10_000, unit_fee=0, min_fee=10_000, max_fee=10_000)
UPDATE = FeeTerms("linear", base_fee=500, unit_fee=1, min_fee=1, max_fee=500_000)


def amount(terms, units):
    return calculate_fee(terms, units).amount


@pytest.mark.parametrize(
    ("terms", "units", "expected"),
    [
        (REGISTRATION, 1024, 2024),  # SPEC worked example
        (REGISTRATION, 998_999, 999_999),
        (REGISTRATION, 999_000, 1_000_000),  # "999,000 bytes or more costs 1,000,000"
        (REGISTRATION, 5_000_000, 1_000_000),
        (REGISTRATION, 0, 1000),
        (UPDATE, 5000, 5500),  # SPEC worked example
        (UPDATE, 0, 500),
        (UPDATE, 10**9, 500_000),
        (STORAGE, 0, 0),
        (STORAGE, 1, 1),
        (STORAGE, 123_456, 123_456),
        (EXECUTION, 0, 100),
        (EXECUTION, 10**12, 100),
        (PROPOSAL, 7, 10_000),
    ],
)
def test_default_schedules(terms, units, expected):
    assert amount(terms, units) == expected


@pytest.mark.parametrize("units", [0, 1, 2, 10**6, 10**18])
def test_fixed_reports_one_unit_and_base_fee(units):
    terms = FeeTerms("fixed", base_fee=250, unit_fee=7, min_fee=0, max_fee=1000)
    quote = calculate_fee(terms, units)
    assert quote.units == 1
    assert quote.raw_amount == 250
    assert quote.amount == 250


@pytest.mark.parametrize(("units", "raw"), [(0, 10), (1, 13), (2, 16), (1000, 3010)])
def test_linear_is_base_plus_unit_fee_times_units(units, raw):
    terms = FeeTerms("linear", base_fee=10, unit_fee=3, min_fee=0, max_fee=10**9)
    quote = calculate_fee(terms, units)
    assert (quote.units, quote.raw_amount, quote.amount) == (units, raw, raw)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (0, 1),
        (1, 1),
        (2, 1),  # bit_length 2 -> 1386 // 1000 = 1
        (3, 1),
        (4, 2),  # bit_length 3 -> 2079 // 1000 = 2
        (7, 2),
        (8, 2),  # bit_length 4 -> 2772 // 1000 = 2
        (15, 2),
        (16, 3),  # bit_length 5 -> 3465 // 1000 = 3
        (1023, 6),  # bit_length 10 -> 6930 // 1000 = 6
        (1024, 7),  # bit_length 11 -> 7623 // 1000 = 7
        (10**6, 13),  # bit_length 20 -> 13860 // 1000 = 13
        (2**64, 45),  # bit_length 65 -> 45045 // 1000 = 45
    ],
)
def test_integer_ln_is_exactly_the_spec_formula(units, expected):
    assert integer_ln(units) == expected
    spec = 1 if units <= 1 else max(1, (units.bit_length() * 693) // 1000)
    assert integer_ln(units) == spec


def test_integer_ln_matches_the_formula_for_a_range():
    for units in range(0, 5000):
        spec = 1 if units <= 1 else max(1, (units.bit_length() * 693) // 1000)
        assert integer_ln(units) == spec


@pytest.mark.parametrize(
    ("units", "raw"), [(0, 150), (1, 150), (2, 150), (4, 200), (1024, 100 + 50 * 7)]
)
def test_logarithmic(units, raw):
    terms = FeeTerms("logarithmic", base_fee=100, unit_fee=50, min_fee=100, max_fee=10_000)
    quote = calculate_fee(terms, units)
    assert (quote.units, quote.raw_amount, quote.amount) == (units, raw, raw)


@pytest.mark.parametrize(
    ("units", "steps"),
    [(0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2), (2000, 2), (2001, 3),
     (10**15 + 1, 10**12 + 1)],
)
def test_step_rounds_up_per_step(units, steps):
    terms = FeeTerms("step", base_fee=5, unit_fee=10, min_fee=0, max_fee=10**18, step_size=1000)
    quote = calculate_fee(terms, units)
    assert quote.raw_amount == 5 + 10 * steps
    assert quote.amount == quote.raw_amount


def test_step_with_step_size_one_is_linear():
    terms = FeeTerms("step", base_fee=1, unit_fee=2, min_fee=0, max_fee=1000, step_size=1)
    assert amount(terms, 7) == 15


def test_clamp_applies_min_then_max():
    # min(max(raw, min_fee), max_fee): a raw amount below min_fee rises to it,
    # above max_fee falls to it, and in between stays.
    terms = FeeTerms("linear", base_fee=100, unit_fee=10, min_fee=100, max_fee=200)
    assert calculate_fee(terms, 0).amount == 100
    assert calculate_fee(terms, 5).amount == 150
    assert calculate_fee(terms, 50).raw_amount == 600
    assert calculate_fee(terms, 50).amount == 200


def test_clamp_order_when_min_equals_max():
    terms = FeeTerms("linear", base_fee=10, unit_fee=1, min_fee=10, max_fee=10)
    assert amount(terms, 0) == 10
    assert amount(terms, 10**9) == 10


def test_clamp_raises_a_raw_amount_below_min_fee():
    # base_fee may equal min_fee; a logarithmic schedule with a zero unit fee still pays min.
    terms = FeeTerms("logarithmic", base_fee=0, unit_fee=0, min_fee=0, max_fee=5)
    assert amount(terms, 100) == 0
    terms = FeeTerms("step", base_fee=3, unit_fee=0, min_fee=3, max_fee=5)
    assert amount(terms, 100) == 3


@pytest.mark.parametrize("method", ["linear", "logarithmic", "step"])
def test_huge_units_stay_exact_integers_and_clamp(method):
    terms = FeeTerms(method, base_fee=1, unit_fee=MAX_UNIT_FEE, min_fee=1, max_fee=10**15)
    quote = calculate_fee(terms, 10**30)
    assert isinstance(quote.amount, int)
    assert quote.amount <= 10**15
    if method == "linear":
        assert quote.raw_amount == 1 + MAX_UNIT_FEE * 10**30
        assert quote.amount == 10**15


def test_negative_units_are_refused():
    with pytest.raises(ValueError):
        calculate_fee(REGISTRATION, -1)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        calculate_fee(FeeTerms("quadratic", 0, 0, 0, 0), 1)


def test_the_calculator_imports_only_the_standard_library():
    # Anywhere in the module, function bodies included: a pure calculator holds no rule
    # that needs Django or DRF, and no import dodges a cycle.
    tree = ast.parse(Path(fees_app.calculator.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= sys.stdlib_module_names, imported


def test_schedule_errors_name_every_broken_field_at_once():
    terms = FeeTerms(FeeMethod.STEP, base_fee=5, unit_fee=2_000_000, min_fee=10, max_fee=1,
                     step_size=0)
    assert schedule_errors(terms) == {
        "unit_fee": f"Ensure this value is less than or equal to {MAX_UNIT_FEE}.",
        "step_size": "Ensure this value is greater than or equal to 1.",
        "min_fee": "Must not exceed max_fee.",
    }


def test_a_base_fee_outside_parsed_bounds_is_reported_with_field_errors():
    terms = FeeTerms("quadratic", base_fee=5, unit_fee=1, min_fee=10, max_fee=-1)
    assert set(schedule_errors(terms)) == {"method", "max_fee", "base_fee"}


def test_valid_schedule_has_no_errors():
    for terms in (REGISTRATION, EXECUTION, STORAGE, PROPOSAL, UPDATE):
        assert schedule_errors(terms) == {}
    at_cap = FeeTerms("linear", base_fee=0, unit_fee=MAX_UNIT_FEE, min_fee=0, max_fee=0)
    assert schedule_errors(at_cap) == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_fee": 11, "max_fee": 10, "base_fee": 10}, "min_fee"),
        ({"base_fee": 5, "min_fee": 10}, "base_fee"),
        ({"base_fee": 2000, "max_fee": 1000}, "base_fee"),
        ({"unit_fee": MAX_UNIT_FEE + 1}, "unit_fee"),
        ({"base_fee": -1}, "base_fee"),
        ({"unit_fee": -1}, "unit_fee"),
        ({"min_fee": -1}, "min_fee"),
        ({"max_fee": -1}, "max_fee"),
        ({"step_size": 0}, "step_size"),
        ({"method": "quadratic"}, "method"),
        ({"base_fee": 1.5}, "base_fee"),
        ({"unit_fee": True}, "unit_fee"),
        ({"max_fee": 2**63}, "max_fee"),  # could never be stored
        ({"step_size": 2**63}, "step_size"),
    ],
)
def test_refused_schedules_name_the_field(changes, field):
    values = {"method": FeeMethod.LINEAR, "base_fee": 10, "unit_fee": 1, "min_fee": 0,
              "max_fee": 1000, "step_size": 1000, **changes}
    errors = schedule_errors(FeeTerms(**values))
    assert field in errors, errors
