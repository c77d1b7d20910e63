from django.urls import path

from webhooks import views

endpoint = "accounts/<slug:slug>/webhooks/<int:endpoint_id>/"

urlpatterns = [
    path("accounts/<slug:slug>/webhooks/", views.endpoint_list, name="webhook-endpoints"),
    path(endpoint, views.endpoint_edit, name="webhook-endpoint"),
    path(endpoint + "rotate-secret/", views.endpoint_rotate, name="webhook-endpoint-rotate"),
    path(endpoint + "delete/", views.endpoint_delete, name="webhook-endpoint-delete"),
    path(endpoint + "deliveries/", views.delivery_log, name="webhook-deliveries"),
    path(
        endpoint + "deliveries/<int:delivery_id>/redeliver/",
        views.redeliver,
        name="webhook-redeliver",
    ),
]
