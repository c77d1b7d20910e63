"""A portal account's role found by the name a person typed (a CSV cell, an API field). Names
match exactly, case included, as the CRM spells them; a near miss gets a "Did you mean"."""

from accounts.models import Role

MISSING = "role_missing"
NOT_FOUND = "role_not_found"
INACTIVE = "role_inactive"


class RoleNameError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class AccountRoles:
    """The account's roles, read once (an import checks thousands of rows against them)."""

    def __init__(self, account):
        self.by_name = {role.name: role for role in Role.objects.filter(portal_account=account)}
        self.by_pk = {role.pk: role for role in self.by_name.values()}
        self.by_folded_name = {}
        for name in self.by_name:
            self.by_folded_name.setdefault(name.casefold(), name)

    def active_names(self):
        names = [f"'{name}'" for name, role in self.by_name.items() if role.active]
        return ", ".join(names) if names else "no active roles yet: create one first"

    def find(self, name, *, missing):
        """The active role of exactly that name; RoleNameError otherwise. `missing` is the
        message for no name at all, which says where the name was expected."""
        if not name:
            raise RoleNameError(MISSING, missing.format(active=self.active_names()))
        role = self.by_name.get(name)
        if role is None:
            suggestion = self.by_folded_name.get(name.casefold())
            if suggestion:
                hint = (
                    f"Did you mean '{suggestion}'? Role names must match exactly, including case."
                )
            else:
                hint = f"Use one of: {self.active_names()}."
            raise RoleNameError(NOT_FOUND, f"No role named '{name}'. {hint}")
        if not role.active:
            raise RoleNameError(
                INACTIVE,
                f"The role '{name}' is inactive. Use an active role ({self.active_names()}), or "
                "make the role active first.",
            )
        return role
