from django.urls import path

from imports import views

account = "accounts/<slug:slug>/imports/"
job = account + "<int:job_id>/"

urlpatterns = [
    path(account, views.job_list, name="import-list"),
    path(account + "template.csv", views.template_csv, name="import-template"),
    path(account + "new/", views.job_new, name="import-new"),
    path(job, views.job_detail, name="import-detail"),
    path(job + "map/", views.job_map, name="import-map"),
    path(job + "review/", views.job_review, name="import-review"),
    path(job + "start/", views.job_start, name="import-start"),
    path(job + "cancel/", views.job_cancel, name="import-cancel"),
    path(job + "discard/", views.job_discard, name="import-discard"),
    path(job + "resume/", views.job_resume, name="import-resume"),
    path(job + "files/<str:which>/", views.job_download, name="import-download"),
]
