""" "Send me a test": an account's wording, saved or not, as an email to the console user who
asks, in the account's layout (sender, logo, colour) with a sample link or code that opens
nothing. It is sent by the worker, not by the request: the mail server's pace is not the
page's. A few an hour per person: it is a way to send mail, and must not become a cheap one."""

from celery import shared_task
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from accounts.models import EmailKind, PortalAccount
from helpers import attempt_counter
from mail import custom_email_changes, custom_emails
from mail.sender_identity import sender_of

PER_HOUR = 10


def too_many(person):
    return attempt_counter.over_limit([_key(person)], PER_HOUR)


def queue(account, kind, subject, body, person):
    attempt_counter.count([_key(person)], PER_HOUR, 3600)
    send_sample_email.delay(account.pk, str(kind), subject, body, person.email)


def _key(person):
    return f"sample-email:{person.pk}"


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def send_sample_email(account_id, kind, subject, body, to_email):
    account = PortalAccount.objects.filter(pk=account_id).first()
    if account is None:
        return
    message(account, EmailKind(kind), subject, body, to_email).send()


def message(account, kind, subject, body, to_email):
    values = custom_email_changes.sample_values(account, kind)
    sender = sender_of(account)
    subject, text, paragraphs = custom_emails.render(subject, body, values, sender.accent)
    html = render_to_string(
        "emails/custom.html",
        {
            "portal_name": account.name,
            "accent": sender.accent,
            "logo_url": sender.logo_url,
            "paragraphs": paragraphs,
        },
    )
    email = EmailMultiAlternatives(
        f"[Test] {subject}", text, sender.from_header, [to_email], reply_to=sender.reply_to
    )
    email.attach_alternative(html, "text/html")
    return email
