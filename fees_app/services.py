"""Every write on fees: schedules, credits and fee debits."""

import dataclasses

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from fees_app.calculator import MAX_STORED_INT, FeeQuote, calculate_fee
from fees_app.inputs import CreditInput, FeeQuoteInput, ScheduleInput
from fees_app.models import Account, FeeSchedule, LedgerEntry
from registry_site.audit import audit_record
from registry_site.compiled import (
    MARKER_TEXT,
    Compiled,
    insert_after,
    insert_new,
    statement_cursor,
)
from registry_site.errors import Conflict, InsufficientFunds
from registry_site.inputs import validated
from registry_site.integrity import is_unique_violation
from registry_site.stats_cache import statistics_changed


def account_for(user) -> Account:
    """The user's account, created empty on first use."""
    account, _ = Account.objects.get_or_create(user=user)
    return account


# Read by every charge and quote (registry_site.compiled).
_ACTIVE = Compiled(lambda fee_type: FeeSchedule.objects.active().filter(fee_type=fee_type)[:1],
                   fee_type=MARKER_TEXT)


def active_schedule(fee_type: str) -> FeeSchedule:
    """The active schedule of a (valid) fee type."""
    schedule = next(iter(_ACTIVE.rows(fee_type=fee_type)), None)
    if schedule is None:
        raise Conflict(f"No active fee schedule for {fee_type}.", code="no_schedule")
    return schedule


def fee_quote(*, fee_type: str, units: int) -> tuple[FeeSchedule, FeeQuote]:
    """What a fee would cost now: the active schedule and the computed quote."""
    data = validated(FeeQuoteInput, {"fee_type": fee_type, "units": units})
    schedule = active_schedule(data["fee_type"])
    return schedule, calculate_fee(schedule.terms, data["units"])


def schedule_install(*, fee_type: str, method: str, base_fee: int, unit_fee: int, min_fee: int,
                     max_fee: int, step_size: int = 1000, actor=None, reason: str = "",
                     proposal_id: int | None = None) -> FeeSchedule:
    """Install a new version of a fee type's schedule and make it the active one."""
    data = validated(ScheduleInput, {
        "fee_type": fee_type, "method": method, "base_fee": base_fee, "unit_fee": unit_fee,
        "min_fee": min_fee, "max_fee": max_fee, "step_size": step_size, "reason": reason,
    })
    fee_type = data["fee_type"]
    with transaction.atomic():
        # Installs for one type queue up on a lock of the type's first version, a row that
        # never changes. (Locking the active row instead lets a waiter wake to find it no
        # longer active, and two waiters then race for the same new version number.) A
        # no-key lock: charges hold key-share locks on the version they use (their ledger
        # row's foreign key), and while the first version is the active one a full FOR
        # UPDATE would make every charge of the type wait for the install to commit.
        list(FeeSchedule.objects.select_for_update(no_key=True).filter(fee_type=fee_type)
             .order_by("version").values_list("pk", flat=True)[:1])
        previous = FeeSchedule.objects.filter(fee_type=fee_type, is_active=True).first()
        latest = FeeSchedule.objects.filter(fee_type=fee_type).aggregate(v=Max("version"))["v"]
        FeeSchedule.objects.filter(fee_type=fee_type, is_active=True).update(is_active=False)
        try:
            with transaction.atomic():
                schedule = FeeSchedule.objects.create(
                    **data, version=(latest or 0) + 1, is_active=True, created_by=actor,
                    proposal_id=proposal_id,
                )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise Conflict(f"Another change to the {fee_type} schedule won; try again.") from None
        audit_record(
            action="fee_schedule.installed", actor=actor, target=schedule,
            details={**data, "version": schedule.version,
                     "previous_version": previous.version if previous else None,
                     "proposal_id": proposal_id},
        )
    return schedule


def account_credit(*, user, amount: int, actor=None, reason: str) -> LedgerEntry:
    """Add funds to a user's account (a top-up by a moderator or an operator)."""
    data = validated(CreditInput, {"amount": amount, "reason": reason})
    amount, reason = data["amount"], data["reason"]
    with transaction.atomic():
        account = account_for(user)
        # The check and the credit are one statement: a balance never passes what its
        # 64-bit column holds, which would fail every later write of this account.
        updated = Account.objects.filter(pk=account.pk, balance__lte=MAX_STORED_INT - amount)\
            .update(balance=F("balance") + amount, updated_at=timezone.now())
        account.refresh_from_db(fields=["balance"])
        if updated != 1:
            raise Conflict(
                f"A credit of {amount} would take the balance of {account.balance} past "
                f"{MAX_STORED_INT}.", code="counter_overflow", balance=account.balance,
            )
        entry = LedgerEntry.objects.create(
            account=account, kind=LedgerEntry.Kind.CREDIT, amount=amount,
            balance_after=account.balance, reason=reason, created_by=actor,
        )
        audit_record(action="account.credited", actor=actor, target=account,
                     details={"user": user.get_username(), "amount": amount,
                              "balance": account.balance, "reason": reason})
    return entry


def _debit(*, user, entry: LedgerEntry, now, schedule: FeeSchedule) -> LedgerEntry | None:
    """Take ``entry.amount`` from the user's account if the balance covers it and
    ``schedule``, which priced it, is still the active one with the same terms, and record
    ``entry`` (its account and balance after filled in); None when not (or the user has no
    account yet), with nothing written.

    Compare-and-swap in one statement: the balance check and the debit cannot be split by a
    concurrent debit, and RETURNING hands back the new balance without a second read. On
    PostgreSQL the ledger row is inserted by the same statement. The row lock it takes is
    the user's own account, never a row other users' fees touch.
    """
    table, schedules = Account._meta.db_table, FeeSchedule._meta.db_table
    terms = dataclasses.asdict(schedule.terms)
    debit = (f"UPDATE {table} SET balance = balance - %s, updated_at = %s "
             "WHERE user_id = %s AND balance >= %s "
             f"AND EXISTS (SELECT 1 FROM {schedules} WHERE id = %s AND is_active AND "
             f"{' AND '.join(f'{name} = %s' for name in terms)}) RETURNING id, balance")
    params = [entry.amount, connection.ops.adapt_datetimefield_value(now), user.pk,
              entry.amount, schedule.pk, *terms.values()]
    if connection.vendor == "postgresql":
        return insert_after(entry, statement=debit, params=params,
                            taken={"account_id": "source.id", "balance_after": "source.balance"})
    with statement_cursor() as cursor:
        cursor.execute(debit, params)
        debited = cursor.fetchone()
    if debited is None:
        return None
    entry.account_id, entry.balance_after = debited
    return insert_new(entry)


# The schedule of each fee type that this process last charged with. A charge prices with it
# and its debit goes through only while that row is still the active one with the same terms
# (_debit checks in the same statement), so a schedule installed since, by any process, is
# never charged at the old price: the debit is refused and the charge reads the new one.
_last_schedule: dict[str, FeeSchedule] = {}
# Installs in a row between a charge's read and its debit; each retry reads the new one.
CHARGE_ATTEMPTS = 3


def _fresh_schedule(fee_type: str) -> FeeSchedule:
    schedule = _last_schedule[fee_type] = active_schedule(fee_type)
    return schedule


def fee_charge(*, user, fee_type: str, units: int, model_name: str = "",
               model_version: str = "") -> LedgerEntry:
    """Debit the fee for ``units`` of ``fee_type`` from the user's account.

    Runs inside the caller's transaction when there is one, so the debit and the operation it
    pays for commit or roll back together. Too little balance raises InsufficientFunds and
    changes nothing.

    The active schedule is not locked: the ledger row's foreign key takes only a key share on
    it, which neither waits for other charges nor for an install (that deactivates the row
    with a no-key update). A charge whose debit ran before an install commits is ordered
    before that install, and its ledger row names the version it used.
    """
    data = validated(FeeQuoteInput, {"fee_type": fee_type, "units": units})
    fee_type, units = data["fee_type"], data["units"]
    schedule = _last_schedule.get(fee_type) or _fresh_schedule(fee_type)
    now = timezone.now()
    entry = refusal = None
    # No savepoint: a refusal is raised after this block, when nothing has been written.
    with transaction.atomic(savepoint=False):
        for _ in range(CHARGE_ATTEMPTS):
            quote = calculate_fee(schedule.terms, units)
            entry = _debit(user=user, now=now, schedule=schedule, entry=LedgerEntry(
                kind=LedgerEntry.Kind.DEBIT, amount=quote.amount, fee_type=fee_type,
                schedule=schedule, units=quote.units, model_name=model_name,
                model_version=model_version, created_at=now,
            ))
            if entry is not None:
                break
            # Refused: another schedule is active now, or the user has no account yet
            # (created empty here), or too little on it.
            active = _fresh_schedule(fee_type)
            if (active.pk, active.terms) != (schedule.pk, schedule.terms):
                schedule = active
                continue
            account = account_for(user)
            if account.balance < quote.amount:
                refusal = InsufficientFunds(
                    f"The {fee_type} fee is {quote.amount} but the balance is "
                    f"{account.balance}.",
                    needed=quote.amount, balance=account.balance, fee_type=fee_type,
                )
                break
        else:
            refusal = Conflict(f"The {fee_type} fee schedule changed while charging; try "
                               "again.", code="schedule_changed")
        if entry is not None:
            statistics_changed()
    if refusal is not None:
        raise refusal
    return entry
