"""The proposals filter, shared by the API list and the proposals page."""

import django_filters

from governance_app.models import ProposalState, ProposalType
from registry_site.inputs import ChoiceFilter


class ProposalFilterSet(django_filters.FilterSet):
    """Filters a queryset made by ``Proposal.objects.with_state()``.

    ``state`` filters on that annotation, so the rows listed and the state each row shows come
    from the same SQL expression evaluated at the same instant.
    """

    state = ChoiceFilter(choices=ProposalState.choices, method="filter_state")
    type = ChoiceFilter(choices=ProposalType.choices)
    proposer = django_filters.CharFilter(field_name="proposer__username",
                                         help_text="The proposer's username.")

    def filter_state(self, queryset, name, value):
        return queryset.filter(state=value)
