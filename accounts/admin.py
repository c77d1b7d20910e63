"""The Django admin for support staff: read-only. Every change to what the console manages
(accounts, licenses, roles, users) goes through the console, which checks the rules (reserved
slugs, the license cap) and writes the audit event; here staff look things up. Its sign-in goes
through the same backend, throttle and second factor as the console's
(portal_admin/support_admin.py)."""

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP

from accounts.models import (
    AccessPolicy,
    AuditEvent,
    LoginToken,
    OutboxEmail,
    PortalAccount,
    Role,
    RoleCount,
    SignedInSession,
    User,
    UserCount,
)
from accounts.permissions import is_mssp_admin


class ReadOnlyAdmin(admin.ModelAdmin):
    def lookup_allowed(self, lookup, value, request=None):
        """Only the filters the page offers. Django lets a URL filter a list by any field of
        the model, shown or not: `?password__startswith=pbkdf2` on the users, asked one
        character at a time, read out a password hash (a token's hash, likewise)."""
        offered = {self.date_hierarchy} - {None}
        for item in self.get_list_filter(request) if request is not None else self.list_filter:
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                offered.add(item.parameter_name)
            else:
                path = item[0] if isinstance(item, (list, tuple)) else item
                offered.add(path.split(LOOKUP_SEP)[0])
        field = lookup.split(LOOKUP_SEP)[0]
        return field in offered and super().lookup_allowed(lookup, value, request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MsspAdminsOnlyAdmin(ReadOnlyAdmin):
    """What the console shows MSSP admins only (the whole audit log, API tokens, who is signed
    in from where): technicians do not read it here either."""

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and is_mssp_admin(request.user)


class RoleInline(admin.TabularInline):
    model = Role
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PortalAccount)
class PortalAccountAdmin(ReadOnlyAdmin):
    list_display = ["name", "slug", "partner_licenses", "customer_licenses", "employee_licenses"]
    search_fields = ["name", "slug"]
    inlines = [RoleInline]


@admin.register(AccessPolicy)
class AccessPolicyAdmin(ReadOnlyAdmin):
    list_display = [
        "portal_account",
        "reminders_on",
        "partner_inactive_days",
        "customer_inactive_days",
        "updated_at",
    ]
    list_select_related = ["portal_account"]


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    list_display = ["name", "portal_account", "user_type", "active"]
    list_filter = ["active", "user_type", "portal_account"]


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ["email", "name", "kind", "portal_account", "user_type", "state", "role"]
    list_filter = ["kind", "state", "user_type", "portal_account"]
    search_fields = ["email", "name", "contact__contact_id"]
    exclude = ["password"]
    list_select_related = ["portal_account", "role"]


@admin.register(LoginToken)
class LoginTokenAdmin(ReadOnlyAdmin):
    list_display = ["user", "purpose", "created_at", "expires_at", "used_at", "revoked_at"]
    list_filter = ["purpose"]
    exclude = ["token_hash"]
    list_select_related = ["user"]


@admin.register(OutboxEmail)
class OutboxEmailAdmin(ReadOnlyAdmin):
    list_display = ["to_email", "kind", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["to_email"]


@admin.register(AuditEvent)
class AuditEventAdmin(MsspAdminsOnlyAdmin):
    list_display = [
        "created_at",
        "actor_label",
        "action",
        "subject_label",
        "portal_account",
        "outcome",
    ]
    list_filter = ["action", "outcome"]
    search_fields = ["actor_label", "subject_label"]
    # A LEFT JOIN: an event keeps the id of an account or user that may be gone.
    list_select_related = ["portal_account"]


@admin.register(SignedInSession)
class SignedInSessionAdmin(MsspAdminsOnlyAdmin):
    list_display = ["user", "door", "ip_address", "created_at", "last_seen_at"]
    list_filter = ["door"]
    exclude = ["session_key"]
    list_select_related = ["user"]


@admin.register(UserCount)
class UserCountAdmin(ReadOnlyAdmin):
    """The counters the console reads; `manage.py recount` checks them against the users."""

    list_display = ["portal_account", "user_type", "state", "users"]
    list_filter = ["user_type", "state", "portal_account"]
    list_select_related = ["portal_account"]


@admin.register(RoleCount)
class RoleCountAdmin(ReadOnlyAdmin):
    """Users per role, which the Roles page reads; `manage.py recount` checks them."""

    list_display = ["role", "portal_account", "users"]
    list_filter = ["portal_account"]
    list_select_related = ["role", "portal_account"]
