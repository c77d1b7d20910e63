from accounts.models.access_policy import AccessPolicy
from accounts.models.audit import AuditEvent
from accounts.models.outbox import EmailKind, OutboxEmail
from accounts.models.portal_account import CONTACT_USER_TYPES, PortalAccount, Role, UserType
from accounts.models.signed_in_session import SignedInSession
from accounts.models.tokens import LoginToken, TokenPurpose
from accounts.models.user import User, UserKind, UserState
from accounts.models.user_count import RoleCount, UserCount

__all__ = [
    "AccessPolicy",
    "CONTACT_USER_TYPES",
    "AuditEvent",
    "EmailKind",
    "LoginToken",
    "OutboxEmail",
    "PortalAccount",
    "Role",
    "RoleCount",
    "SignedInSession",
    "TokenPurpose",
    "User",
    "UserCount",
    "UserKind",
    "UserState",
    "UserType",
]
