from django.urls import path

from mail import views

settings_of_account = "accounts/<slug:slug>/settings/"

urlpatterns = [
    path(settings_of_account + "sender/", views.sender_identity, name="sender-identity"),
    path(settings_of_account + "sender/logo/", views.sender_logo, name="sender-logo"),
    path(settings_of_account + "emails/", views.custom_email_list, name="custom-emails"),
    path(settings_of_account + "emails/<str:kind>/", views.custom_email_edit, name="custom-email"),
]
