"""The fee formulas of SPEC 4.1, as pure integer functions.

Pure: no Django, no DRF. The rules a schedule must follow live in fees_app.inputs.
"""

from dataclasses import dataclass


class FeeMethod:
    FIXED = "fixed"
    LINEAR = "linear"
    LOGARITHMIC = "logarithmic"
    STEP = "step"


MAX_UNIT_FEE = 1_000_000
# The largest value a BigIntegerField column holds; larger sums could never be stored.
MAX_STORED_INT = 2**63 - 1


@dataclass(frozen=True)
class FeeTerms:
    method: str
    base_fee: int
    unit_fee: int
    min_fee: int
    max_fee: int
    step_size: int = 1000


@dataclass(frozen=True)
class FeeQuote:
    units: int
    raw_amount: int
    amount: int


def integer_ln(units: int) -> int:
    """An integer approximation of ln(units): bit length times ln 2 (0.693), at least 1."""
    if units <= 1:
        return 1
    return max(1, (units.bit_length() * 693) // 1000)


def calculate_fee(terms: FeeTerms, units: int) -> FeeQuote:
    """Raw amount by method, then clamped: min(max(raw, min_fee), max_fee)."""
    if units < 0:
        raise ValueError("units must be >= 0")
    if terms.method == FeeMethod.FIXED:
        units = 1
        raw = terms.base_fee
    elif terms.method == FeeMethod.LINEAR:
        raw = terms.base_fee + terms.unit_fee * units
    elif terms.method == FeeMethod.LOGARITHMIC:
        raw = terms.base_fee + terms.unit_fee * integer_ln(units)
    elif terms.method == FeeMethod.STEP:
        steps = -(-units // terms.step_size)  # ceil without floats
        raw = terms.base_fee + terms.unit_fee * steps
    else:
        raise ValueError(f"unknown fee method {terms.method!r}")
    return FeeQuote(units=units, raw_amount=raw, amount=min(max(raw, terms.min_fee), terms.max_fee))
