"""Your time zone: the console shows every time in it (accounts.time_zones)."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts import time_zones
from accounts.models import User
from accounts.permissions import console_view


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
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
