from django import forms
from django.conf import settings

from registry_site.models import Scope
from registry_site.roles import allowed_scopes


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked: every scope you may hold.",
    )
    expires_in = forms.IntegerField(
        min_value=1, max_value=settings.TOKEN_MAX_TTL_SECONDS, initial=settings.TOKEN_TTL_SECONDS,
        help_text="Seconds until the token expires.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        permitted = set(allowed_scopes(user))
        self.fields["scopes"].choices = [c for c in Scope.choices if c[0] in permitted]
