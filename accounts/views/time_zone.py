"""Your time zone: the console shows every time in it (accounts.time_zones)."""

from html import escape

from django import forms
from django.contrib import messages
from django.forms.utils import flatatt
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts import time_zones
from accounts.models import User
from accounts.permissions import console_view


class ZoneSelect(forms.Select):
    """The same <select> as Django's, its options written here: Django renders each of the ~600
    options through two templates, 80 ms a page (90 % of the page's time)."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = set(self.format_value(value))
        options = "\n".join(
            f'<option value="{escape(str(option))}"{" selected" * (str(option) in chosen)}>'
            f"{escape(str(label))}</option>"
            for option, label in self.choices
        )
        attrs = flatatt(self.build_attrs(self.attrs, attrs))
        return format_html('<select name="{}"{}>\n{}\n</select>', name, attrs, mark_safe(options))


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        widget=ZoneSelect,
        help_text="Times in the console are shown in this zone; hover a time for the exact one.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in time_zones.choices()]


@console_view
def time_zone(request):
    current = request.user.time_zone or time_zones.DEFAULT
    form = TimeZoneForm(
        request.POST if request.method == "POST" else None, initial={"time_zone": current}
    )
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["time_zone"]
        User.objects.filter(pk=request.user.pk).update(time_zone=chosen)
        timezone.activate(time_zones.zone(chosen))
        messages.success(request, f"Times are shown in {chosen} now.")
        return redirect("time-zone")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "current": current, "now": timezone.now()}
    return render(request, "accounts/time_zone.html", context, status=status)
