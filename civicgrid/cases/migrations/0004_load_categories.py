"""Load the shipped category catalogue (cases/data/categories.csv): every deployment
starts with the 数字城管 部件/事件 and the 12345 诉求 categories and their time limits.

Idempotent; ``civicgrid load-categories`` loads the same file (or an edited one)
again and updates in place. Default units are set only for units that exist, which
on a fresh database is none: see ``catalogue.link_default_units``.
"""

from django.db import migrations


def load(apps, schema_editor):
    from civicgrid.cases import catalogue

    catalogue.load_catalogue_with(
        catalogue.CatalogueModels(
            category=apps.get_model("cases", "Category"),
            time_limit=apps.get_model("cases", "TimeLimit"),
            unit=apps.get_model("grids", "HandlingUnit"),
        ),
        using=schema_editor.connection.alias,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0003_cases"),
        ("grids", "0001_initial"),
    ]

    operations = [
        # Going back leaves the categories: cases may point at them.
        migrations.RunPython(load, migrations.RunPython.noop),
    ]
