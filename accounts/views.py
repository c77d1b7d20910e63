from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from accounts.mail_folder import read_folder
from accounts.models import PortalAccount


def console_user_required(view):
    """Signed in, and allowed into the console (MSSP staff or a portal account's admin)."""

    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.can_use_console():
            raise PermissionDenied("The console is for MSSP staff and portal-account admins.")
        return view(request, *args, **kwargs)

    return wrapped


@console_user_required
def home(request):
    user = request.user
    accounts = (
        PortalAccount.objects.all()
        if user.is_mssp
        else PortalAccount.objects.filter(pk=user.portal_account_id)
    )
    return render(request, "accounts/home.html", {"portal_accounts": accounts})


@console_user_required
def sent_mail(request):
    """What the demo 'sent': only with DEBUG and the mail-folder backend, never in production."""
    if not (settings.DEBUG and settings.EMAIL_BACKEND.endswith("MailFolderBackend")):
        raise Http404
    if not request.user.is_mssp:
        raise PermissionDenied
    return render(request, "accounts/sent_mail.html", {"messages_sent": read_folder()})
