from django.urls import path

from mail import views

urlpatterns = [
    path("accounts/<slug:slug>/settings/sender/", views.sender_identity, name="sender-identity"),
]
