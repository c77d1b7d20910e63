class LifecycleError(Exception):
    """A change a person asked for that the rules do not allow. The message is shown to them
    as it is, so it says what is wrong and, where it can, what to do."""


class NoLicensesLeft(LifecycleError):
    pass


class InvalidToken(Exception):
    """A link or code that cannot be used: unknown, used, expired, revoked or for elsewhere."""
