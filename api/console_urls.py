from django.urls import path

from api import views

account = "accounts/<slug:slug>/"

urlpatterns = [
    path(account + "api-tokens/", views.token_list, name="api-tokens"),
    path(
        account + "api-tokens/<int:api_token_id>/revoke/",
        views.token_revoke,
        name="api-token-revoke",
    ),
]
