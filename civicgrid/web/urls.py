from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from civicgrid.web import views

# The auth views name their templates: django.contrib.admin ships
# registration/password_change_*.html too, and comes first in INSTALLED_APPS.
urlpatterns = [
    path("", views.home, name="home"),
    path("map/", views.grid_map, name="grid-map"),
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(template_name="web/password_change_form.html"),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="web/password_change_done.html"),
        name="password_change_done",
    ),
]
