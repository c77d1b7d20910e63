from django.apps import AppConfig


class MailConfig(AppConfig):
    """Email delivery: the outbox, what each email says, the send pace, the Celery tasks that
    deliver, and the demo's mail folder. The outbox rows themselves (accounts.OutboxEmail) stay
    with the domain models: they are written in the same transaction as the change that causes
    them, and moving the table would cost a state-only migration in two apps for no reader."""

    name = "mail"
