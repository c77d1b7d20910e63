"""The portal-user API for CRM cards and workflows:
/api/v1/accounts/<slug>/contacts/<ref>/portal-user/..."""

urlpatterns = []
