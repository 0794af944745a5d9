from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from civicgrid.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("map/", views.grid_map, name="grid-map"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
