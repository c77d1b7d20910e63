from django.conf import settings


def demo_mail(request):
    return {
        "show_sent_mail": settings.DEBUG and settings.EMAIL_BACKEND.endswith("MailFolderBackend")
    }
