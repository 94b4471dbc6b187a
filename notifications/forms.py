from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Preferences


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Preferences
        fields = ["mention_email", "digest_email", "blog_email", "language"]
        labels = {
            "mention_email": _("Email me when someone mentions me and I have not read it"),
            "digest_email": _("Send me a daily digest of my rooms"),
            "blog_email": _("Email me when a blog post is published"),
            "language": _("Language of emails"),
        }
