"""Contact sync for CRM connectors: /api/v1/accounts/<slug>/contacts/..."""

urlpatterns = []
