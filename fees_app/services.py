"""Every write on fees: schedules, credits and fee debits."""

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from fees_app.calculator import FeeQuote, FeeTerms, calculate_fee, schedule_errors
from fees_app.models import Account, FeeSchedule, FeeType, LedgerEntry
from registry_site.audit import audit_record
from registry_site.errors import Conflict, InsufficientFunds, InvalidInput
from registry_site.stats_cache import statistics_changed

MAX_CREDIT = 10**15
# Units stored on a ledger row; far above any real size, far below the column's limit.
MAX_UNITS = 10**15


def account_for(user) -> Account:
    """The user's account, created empty on first use."""
    account, _ = Account.objects.get_or_create(user=user)
    return account


def active_schedule(fee_type: str) -> FeeSchedule:
    if fee_type not in FeeType.values:
        raise InvalidInput({"fee_type": f"Must be one of {', '.join(FeeType.values)}."})
    schedule = FeeSchedule.objects.active().filter(fee_type=fee_type).first()
    if schedule is None:
        raise Conflict(f"No active fee schedule for {fee_type}.", code="no_schedule")
    return schedule


def fee_quote(*, fee_type: str, units: int) -> tuple[FeeSchedule, FeeQuote]:
    """What a fee would cost now: the active schedule and the computed quote."""
    if isinstance(units, bool) or not isinstance(units, int) or not 0 <= units <= MAX_UNITS:
        raise InvalidInput({"units": f"Must be an integer between 0 and {MAX_UNITS}."})
    schedule = active_schedule(fee_type)
    return schedule, calculate_fee(schedule.terms, units)


def schedule_install(*, fee_type: str, method: str, base_fee: int, unit_fee: int, min_fee: int,
                     max_fee: int, step_size: int = 1000, actor=None, reason: str = "",
                     proposal_id: int | None = None) -> FeeSchedule:
    """Install a new version of a fee type's schedule and make it the active one."""
    if fee_type not in FeeType.values:
        raise InvalidInput({"fee_type": f"Must be one of {', '.join(FeeType.values)}."})
    terms = FeeTerms(method=method, base_fee=base_fee, unit_fee=unit_fee, min_fee=min_fee,
                     max_fee=max_fee, step_size=step_size)
    errors = schedule_errors(terms)
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        # Installs for one type queue up on a lock of the type's first version, a row that
        # never changes. (Locking the active row instead lets a waiter wake to find it no
        # longer active, and two waiters then race for the same new version number.)
        list(FeeSchedule.objects.select_for_update().filter(fee_type=fee_type)
             .order_by("version").values_list("pk", flat=True)[:1])
        previous = FeeSchedule.objects.filter(fee_type=fee_type, is_active=True).first()
        latest = FeeSchedule.objects.filter(fee_type=fee_type).aggregate(v=Max("version"))["v"]
        FeeSchedule.objects.filter(fee_type=fee_type, is_active=True).update(is_active=False)
        try:
            schedule = FeeSchedule.objects.create(
                fee_type=fee_type, version=(latest or 0) + 1, method=method, base_fee=base_fee,
                unit_fee=unit_fee, min_fee=min_fee, max_fee=max_fee, step_size=step_size,
                is_active=True, reason=reason, created_by=actor, proposal_id=proposal_id,
            )
        except IntegrityError:
            raise Conflict(f"Another change to the {fee_type} schedule won; try again.") from None
        audit_record(
            action="fee_schedule.installed", actor=actor, target=schedule,
            details={"fee_type": fee_type, "version": schedule.version,
                     "previous_version": previous.version if previous else None,
                     "method": method, "base_fee": base_fee, "unit_fee": unit_fee,
                     "min_fee": min_fee, "max_fee": max_fee, "step_size": step_size,
                     "reason": reason, "proposal_id": proposal_id},
        )
    return schedule


def account_credit(*, user, amount: int, actor=None, reason: str) -> LedgerEntry:
    """Add funds to a user's account (a top-up by a moderator or an operator)."""
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_CREDIT:
        raise InvalidInput({"amount": f"Must be an integer between 1 and {MAX_CREDIT}."})
    if not reason or not reason.strip():
        raise InvalidInput({"reason": "A reason is required."})
    with transaction.atomic():
        account = account_for(user)
        Account.objects.filter(pk=account.pk).update(
            balance=F("balance") + amount, updated_at=timezone.now()
        )
        account.refresh_from_db(fields=["balance"])
        entry = LedgerEntry.objects.create(
            account=account, kind=LedgerEntry.Kind.CREDIT, amount=amount,
            balance_after=account.balance, reason=reason.strip()[:500], created_by=actor,
        )
        audit_record(action="account.credited", actor=actor, target=account,
                     details={"user": user.get_username(), "amount": amount,
                              "balance": account.balance, "reason": reason})
    return entry


def fee_charge(*, user, fee_type: str, units: int, model_name: str = "",
               model_version: str = "") -> LedgerEntry:
    """Debit the fee for ``units`` of ``fee_type`` from the user's account.

    Runs inside the caller's transaction when there is one, so the debit and the operation it
    pays for commit or roll back together. Too little balance raises InsufficientFunds and
    changes nothing.
    """
    schedule, quote = fee_quote(fee_type=fee_type, units=units)
    with transaction.atomic():
        account = account_for(user)
        # Compare-and-swap: the balance check and the debit are one statement, so two
        # concurrent debits can never both pass on the same funds.
        updated = Account.objects.filter(pk=account.pk, balance__gte=quote.amount).update(
            balance=F("balance") - quote.amount, updated_at=timezone.now()
        )
        account.refresh_from_db(fields=["balance"])
        if updated != 1:
            raise InsufficientFunds(
                f"The {fee_type} fee is {quote.amount} but the balance is {account.balance}.",
                needed=quote.amount, balance=account.balance, fee_type=fee_type,
            )
        entry = LedgerEntry.objects.create(
            account=account, kind=LedgerEntry.Kind.DEBIT, amount=quote.amount,
            balance_after=account.balance, fee_type=fee_type, schedule=schedule,
            units=quote.units, model_name=model_name, model_version=model_version,
        )
        statistics_changed()
    return entry
