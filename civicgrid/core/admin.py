from __future__ import annotations

from django.contrib import admin

from civicgrid.core.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["worker_id", "hostname", "pid", "started_at", "last_seen"]
    readonly_fields = ["worker_id", "hostname", "pid", "started_at", "last_seen"]
