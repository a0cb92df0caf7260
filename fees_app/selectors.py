"""Reads over the ledger shared by the API and the pages."""

from datetime import timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from fees_app.models import LedgerEntry

STATS_DAYS = 30
STATS_TOP = 20


def fee_stats(*, user=None, days: int = STATS_DAYS) -> dict:
    """Fees collected (debits): total, by type, top models, last ``days`` by day, top payers.

    With ``user`` the figures cover that user's payments only and ``by_user`` is omitted.
    """
    debits = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DEBIT)
    if user is not None:
        debits = debits.filter(account__user=user)
    total = debits.aggregate(total=Sum("amount"), count=Count("id"))
    by_type = {
        row["fee_type"]: {"amount": row["amount"], "count": row["count"]}
        for row in debits.values("fee_type").annotate(amount=Sum("amount"), count=Count("id"))
        .order_by("fee_type")
    }
    by_model = [
        {"name": row["model_name"], "amount": row["amount"], "count": row["count"]}
        for row in debits.exclude(model_name="").values("model_name")
        .annotate(amount=Sum("amount"), count=Count("id")).order_by("-amount", "model_name")
        [:STATS_TOP]
    ]
    since = timezone.now() - timedelta(days=days)
    by_day = [
        {"date": row["day"].isoformat(), "amount": row["amount"], "count": row["count"]}
        for row in debits.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
        .values("day").annotate(amount=Sum("amount"), count=Count("id")).order_by("day")
    ]
    stats = {
        "total_collected": total["total"] or 0,
        "total_count": total["count"],
        "by_type": by_type,
        "by_model": by_model,
        "by_day": by_day,
    }
    if user is None:
        stats["by_user"] = [
            {"username": row["account__user__username"], "amount": row["amount"],
             "count": row["count"]}
            for row in debits.values("account__user__username")
            .annotate(amount=Sum("amount"), count=Count("id"))
            .order_by("-amount", "account__user__username")[:STATS_TOP]
        ]
    return stats
