"""The one FilterSet behind the API list and the catalog page (SPEC 3.5)."""

import datetime

import django_filters as filters
from django import forms

from fees_app.calculator import MAX_STORED_INT
from models_app.models import Category, Registration
from models_app.search import is_postgresql, rank_by_relevance, search_registrations, with_tag
from registry_site.inputs import ChoiceFilter

# Each ordering ends on a unique column so pages never overlap; each starts on an indexed one.
ORDERINGS = {
    "name": ("name", "version"),
    "-name": ("-name", "-version"),
    "-registered_at": ("-registered_at", "-id"),
    "registered_at": ("registered_at", "id"),
    "-executions": ("-usage__total_executions", "-usage__registration_id"),
    "executions": ("usage__total_executions", "usage__registration_id"),
    "size": ("size_bytes", "id"),
    "-size": ("-size_bytes", "-id"),
}
ORDERING_CHOICES = [
    ("name", "Name"), ("-name", "Name (Z-A)"), ("-registered_at", "Newest"),
    ("registered_at", "Oldest"), ("-executions", "Most executions"),
    ("executions", "Fewest executions"), ("size", "Smallest"), ("-size", "Largest"),
]
DEFAULT_ORDERING = "-registered_at"
# Other spellings clients reach for: SPEC 3.5's words and the response's field names.
ORDERING_ALIASES = {
    "newest": "-registered_at", "oldest": "registered_at",
    "most_executions": "-executions", "total_executions": "executions",
    "-total_executions": "-executions", "size_bytes": "size", "-size_bytes": "-size",
}


class UTCDateTimeField(forms.DateTimeField):
    """A date-time that also exists in UTC (0001-01-01T00:00+14:00 does not)."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is not None:
            try:
                result.astimezone(datetime.UTC)
            except OverflowError:
                raise forms.ValidationError("This time is out of range.", code="invalid") from None
        return result


class UTCDateTimeFilter(filters.DateTimeFilter):
    field_class = UTCDateTimeField


class IntegerFilter(filters.NumberFilter):
    """A whole number a 64-bit column holds: ``0.5`` or 2**70 is refused (400), never
    compared (PostgreSQL would fail on the out-of-range value)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_value", MAX_STORED_INT)
        super().__init__(*args, **kwargs)


class RegistrationFilterSet(filters.FilterSet):
    search = filters.CharFilter(
        method="filter_search", max_length=200, label="Search",
        help_text="Words in the name, version, description or tags.",
    )
    category = ChoiceFilter(choices=Category.choices)
    status = ChoiceFilter(choices=Registration.Status.choices)
    owner = filters.CharFilter(field_name="owner__username", label="Owner (username)",
                               max_length=150)
    tag = filters.CharFilter(method="filter_tag", max_length=50, label="Tag")
    license = filters.CharFilter(max_length=100)
    size_min = IntegerFilter(field_name="size_bytes", lookup_expr="gte",
                             label="Size at least (bytes)", min_value=0)
    size_max = IntegerFilter(field_name="size_bytes", lookup_expr="lte",
                             label="Size at most (bytes)", min_value=0)
    parameters_min = IntegerFilter(field_name="parameter_count", lookup_expr="gte",
                                   label="Parameters at least", min_value=0)
    parameters_max = IntegerFilter(field_name="parameter_count", lookup_expr="lte",
                                   label="Parameters at most", min_value=0)
    registered_since = UTCDateTimeFilter(
        field_name="registered_at", lookup_expr="gte", label="Registered since",
        help_text="ISO 8601 date or time, such as 2026-01-31 or 2026-01-31T12:00:00Z.",
    )
    ordering = ChoiceFilter(choices=ORDERING_CHOICES, method="filter_ordering",
                                    label="Order by", empty_label="Best match / newest")

    class Meta:
        model = Registration
        fields = []

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and data.get("ordering") in ORDERING_ALIASES:
            data = data.copy()
            data["ordering"] = ORDERING_ALIASES[data["ordering"]]
        super().__init__(data, *args, **kwargs)

    def filter_search(self, queryset, name, value):
        return search_registrations(queryset, value)

    def filter_tag(self, queryset, name, value):
        return with_tag(queryset, value.strip())

    def filter_ordering(self, queryset, name, value):
        # Applied in filter_queryset, after every filter, so the search rank is known.
        return queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        ordering = self.form.cleaned_data.get("ordering")
        terms = self.form.cleaned_data.get("search")
        if ordering in ("executions", "-executions"):
            # Every registration has its usage row; saying so makes the join an inner one,
            # so PostgreSQL can walk usage_executions_idx instead of sorting the table.
            queryset = queryset.filter(usage__isnull=False)
        if ordering:
            return queryset.order_by(*ORDERINGS[ordering])
        if terms and terms.strip() and is_postgresql(queryset):
            # Ranking only when the rank orders the page: ts_rank recomputes each vector.
            return rank_by_relevance(queryset, terms).order_by("-rank", "name", "version")
        return queryset.order_by(*ORDERINGS[DEFAULT_ORDERING])
