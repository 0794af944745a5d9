"""Seven indexes fewer on the cases, one on their events (PostgreSQL; SQLite had fewer).

``unique=True`` and ``db_index=True`` on a text column give PostgreSQL a second index
with ``varchar_pattern_ops`` for ``LIKE 'x%'``: nothing searches case numbers, tracking
codes, idempotency keys or statuses by prefix, so number, tracking code and key become
unique through named constraints (the same uniqueness, one index each) and the status
loses its indexes; the status, the category and the lead unit are also the first
column of a composite index (``status, received_at``, ``category, received_at``,
``lead_unit, status``), and the case of an event of ``case, at``, which serve every
lookup the single-column indexes did. Each index was written on every intake, import
and (for the status, which makes transitions non-HOT updates) every transition.

On a large database this re-adds the three foreign keys (a scan each) and builds the
three unique indexes: minutes at tens of millions of cases, with writes locked.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0006_case_bigram_index"),
        ("grids", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="case",
            name="category",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to="cases.category",
                verbose_name="类别",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=128, null=True),
        ),
        migrations.AlterField(
            model_name="case",
            name="lead_unit",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="lead_cases",
                to="grids.handlingunit",
                verbose_name="主办单位",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="number",
            field=models.CharField(max_length=32, verbose_name="案件编号"),
        ),
        migrations.AlterField(
            model_name="case",
            name="status",
            field=models.CharField(
                choices=[
                    ("new", "待受理"),
                    ("rejected", "不予受理"),
                    ("filed", "待派遣"),
                    ("dispatched", "待签收"),
                    ("in_progress", "处置中"),
                    ("returned", "已回退"),
                    ("handled", "待核查"),
                    ("closed", "已结案"),
                    ("parked", "挂账"),
                    ("voided", "已作废"),
                    ("merged", "已并单"),
                ],
                default="new",
                max_length=16,
                verbose_name="状态",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="tracking_code",
            field=models.CharField(max_length=16, verbose_name="查询码"),
        ),
        migrations.AlterField(
            model_name="caseevent",
            name="case",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="cases.case",
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.UniqueConstraint(fields=("number",), name="case_unique_number"),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.UniqueConstraint(
                fields=("tracking_code",), name="case_unique_tracking_code"
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.UniqueConstraint(
                fields=("idempotency_key",), name="case_unique_idempotency_key"
            ),
        ),
    ]
