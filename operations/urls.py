from django.urls import path

from operations import views

urlpatterns = [
    # /health/ and /metrics are answered by operations.middleware.MonitoringMiddleware before
    # the URLconf; these routes name them and serve them should that middleware be left out.
    path("health/", views.liveness, name="health"),
    path("health/ready/", views.readiness, name="health-ready"),
    path("metrics", views.metrics_endpoint, name="metrics"),
    path("system/", views.system, name="system"),
    # The email's id in the form, as the users page's bulk actions take theirs.
    path("system/failed-emails/retry/", views.retry_email, name="system-email-retry"),
]
