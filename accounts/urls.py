from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.sign_in_view import SignInView
from accounts.views import (
    access_policies,
    audit,
    dev_mail,
    home,
    portal_accounts,
    quick_actions,
    two_factor,
    user_links,
    user_page,
    users,
)
from accounts.views import sessions as session_views
from accounts.views import time_zone as time_zone_views

account = "accounts/<slug:slug>/"

urlpatterns = [
    path("", home.home, name="home"),
    path("sign-in/", SignInView.as_view(), name="login"),
    path("sign-out/", auth_views.LogoutView.as_view(), name="logout"),
    # The second factor: a code after the password, the authenticator app and recovery codes.
    path("sign-in/code/", two_factor.verify, name="two-factor-verify"),
    path("account/two-factor/", two_factor.manage, name="two-factor"),
    path("account/two-factor/set-up/", two_factor.set_up, name="two-factor-set-up"),
    path(
        "account/two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two-factor-recovery-codes",
    ),
    path("account/two-factor/turn-off/", two_factor.turn_off, name="two-factor-turn-off"),
    # Your sign-ins and sessions: where you are signed in, ending any of it.
    path("account/sessions/", session_views.my_sessions, name="my-sessions"),
    path("account/time-zone/", time_zone_views.time_zone, name="time-zone"),
    path(
        "account/sessions/end-others/",
        session_views.end_other_sessions,
        name="my-sessions-end-others",
    ),
    path(
        "account/sessions/<int:session_id>/end/", session_views.end_session, name="my-session-end"
    ),
    path("dev/sent-mail/", dev_mail.sent_mail, name="sent-mail"),
    # Portal accounts (MSSP), their settings (MSSP admin) and dashboards.
    path("accounts/", portal_accounts.account_list, name="portal-accounts"),
    path("accounts/new/", portal_accounts.account_create, name="portal-account-create"),
    path(account, portal_accounts.dashboard, name="dashboard"),
    path(account + "settings/", portal_accounts.account_settings, name="portal-account-settings"),
    path(account + "policies/", access_policies.access_policies, name="access-policies"),
    path(
        account + "policies/inactivity/",
        access_policies.inactivity_preview,
        name="inactivity-preview",
    ),
    path(account + "roles/", portal_accounts.roles, name="roles"),
    path(account + "roles/<int:role_id>/", portal_accounts.role_edit, name="role-edit"),
    # Users of a portal account.
    path(account + "users/", users.user_list, name="users"),
    path(account + "users/picker/", quick_actions.user_picker, name="user-picker"),
    path(account + "quick/<str:quick>/", quick_actions.quick_action, name="quick-action"),
    path(account + "users/new/", users.user_add, name="user-add"),
    path(account + "users/export.csv", users.user_export, name="users-export"),
    path(account + "users/bulk/", users.bulk_action, name="users-bulk"),
    path(account + "users/<int:user_id>/", user_page.user_page, name="user"),
    path(account + "users/<int:user_id>/links/", user_links.links, name="user-links"),
    path(account + "users/<int:user_id>/access-end/", user_page.access_end, name="user-access-end"),
    path(
        account + "users/<int:user_id>/links/<int:token_id>/revoke/",
        user_links.revoke,
        name="user-link-revoke",
    ),
    path(account + "users/<int:user_id>/<str:action>/", users.user_action, name="user-action"),
    # Audit log.
    path(account + "audit/", audit.account_log, name="audit-log"),
    path("audit/", audit.global_log, name="audit-log-global"),
]
