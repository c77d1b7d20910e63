class LifecycleError(Exception):
    """A change a person asked for that the rules do not allow. The message is shown to them
    as it is, so it says what is wrong and, where it can, what to do."""


class NoLicensesLeft(LifecycleError):
    pass


class InvalidToken(Exception):
    """A link or code that cannot be used: unknown, used, expired, revoked or for elsewhere."""


class TooManyEmails(LifecycleError):
    """The user has had as many emails as others may ask for in an hour (accounts/
    email_allowance.py): the API answers 429, the console shows the message."""

    retry_after_seconds = 3600
