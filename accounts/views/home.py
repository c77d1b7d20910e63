from django.shortcuts import redirect

from accounts.permissions import console_view


@console_view
def home(request):
    """MSSP staff start at the list of portal accounts; an account admin at their account."""
    if request.user.is_mssp:
        return redirect("portal-accounts")
    return redirect("dashboard", slug=request.user.portal_account.slug)
