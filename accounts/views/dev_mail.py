from django.conf import settings
from django.http import Http404
from django.shortcuts import render

from accounts.permissions import mssp_view
from mail.mail_folder import read_folder


@mssp_view
def sent_mail(request):
    """What the demo 'sent': only with DEBUG and the mail-folder backend, never in production."""
    if not (settings.DEBUG and settings.EMAIL_BACKEND.endswith("MailFolderBackend")):
        raise Http404
    messages_sent, total = read_folder()
    return render(
        request, "accounts/sent_mail.html", {"messages_sent": messages_sent, "total": total}
    )
