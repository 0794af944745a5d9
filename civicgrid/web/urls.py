from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from civicgrid.web.views import (
    cases,
    desk,
    dispatch,
    field,
    home,
    inbox,
    intake,
    notifications,
    overview,
    portal,
)

# The auth views name their templates: django.contrib.admin ships
# registration/password_change_*.html too, and comes first in INSTALLED_APPS.
urlpatterns = [
    path("", home.home, name="home"),
    path("map/", home.grid_map, name="grid-map"),
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
    # -- cases: the list, the case page and its actions, my tasks
    path("cases/", cases.case_list, name="case-list"),
    path("cases/<int:pk>/", cases.case_detail, name="case-detail"),
    path("cases/<int:pk>/actions/<slug:action>/", cases.case_action, name="case-action"),
    path("notifications/", notifications.task_list, name="notifications"),
    path("notifications/badge/", notifications.task_badge, name="notifications-badge"),
    path("notifications/<slug:kind>/", notifications.task_list, name="notifications-kind"),
    # -- cases end
    # -- intake and dispatch: the call-taker's intake, the dispatcher queue;
    # civicgrid/web/views/intake.py and dispatch.py
    path("intake/", intake.intake_page, name="intake"),
    path("intake/categories/", intake.category_search, name="intake-categories"),
    path("intake/places/", intake.place_search, name="intake-places"),
    path("intake/locate/", intake.locate_point, name="intake-locate"),
    path("intake/duplicates/", intake.duplicates, name="intake-duplicates"),
    path("dispatch/", dispatch.queue, name="dispatch-queue"),
    path("dispatch/bulk/", dispatch.bulk_dispatch, name="dispatch-bulk"),
    path("dispatch/<int:pk>/", dispatch.dispatch_one, name="dispatch-case"),
    # -- intake and dispatch end
    # -- role pages: unit inbox, supervisor desk, grid worker (phone), overview;
    # civicgrid/web/views/inbox.py, desk.py, field.py, overview.py
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/<int:pk>/<slug:action>/", inbox.inbox_action, name="inbox-action"),
    path("desk/", desk.desk, name="desk"),
    path("desk/<int:pk>/<slug:action>/", desk.desk_action, name="desk-action"),
    path("field/", field.field_home, name="field-home"),
    path("field/verify/<int:pk>/", field.verify, name="field-verify"),
    path("field/report/", field.report, name="field-report"),
    path("field/report/categories/", field.report_search, name="field-report-search"),
    path("overview/", overview.overview, name="overview"),
    # -- role pages end
    # -- portal: the citizen portal, public (no account); civicgrid/web/views/portal.py
    path("report/", portal.report, name="portal-report"),
    path("report/done/", portal.report_done, name="portal-report-done"),
    path("report/categories/", portal.category_options, name="portal-categories"),
    path("report/categories/search/", portal.category_search, name="portal-category-search"),
    path("report/outline.json", portal.outline, name="portal-outline"),
    path("track/", portal.track, name="portal-track"),
    path("track/<slug:code>/", portal.case_page, name="portal-case"),
    path("track/<slug:code>/rate/", portal.rate, name="portal-rate"),
    path("track/<slug:code>/photos/<int:pk>/", portal.photo, name="portal-photo"),
    path(
        "track/<slug:code>/photos/<int:pk>/thumb/",
        portal.photo,
        {"size": "thumb"},
        name="portal-photo-thumb",
    ),
    # -- portal end
]
