"""Forms of the chat pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .errors import ChatError
from .services import ROOM_NAME_RULE, room_name_normalize


class RoomCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Room name"),
        max_length=64,
        help_text=_("1 to 64 letters, digits, '_' or '-'."),
    )

    def clean_name(self) -> str:
        try:
            return room_name_normalize(self.cleaned_data["name"])
        except ChatError:
            raise forms.ValidationError(_(ROOM_NAME_RULE), code="invalid_room_name") from None
