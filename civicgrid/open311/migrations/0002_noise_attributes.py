"""Seed the attributes of the noise services: a single-value list 噪声来源 and a
multi-value list 时段. Editable in the admin afterwards; a deployment without
these categories gets nothing."""

from django.db import migrations

NOISE_CATEGORIES = ["SJ0301", "SJ0601", "SJ0602", "SJ0603", "SJ0604"]

SOURCES = [
    ("construction", "建筑施工"),
    ("shop", "商铺经营"),
    ("entertainment", "娱乐场所"),
    ("square_dance", "广场舞"),
    ("renovation", "室内装修"),
    ("neighbour", "邻里生活"),
    ("vehicle", "车辆鸣笛、改装车"),
    ("other", "其他"),
]
PERIODS = [
    ("morning", "清晨（6–8 时）"),
    ("day", "白天（8–18 时）"),
    ("evening", "傍晚（18–22 时）"),
    ("night", "夜间（22 时至次日 6 时）"),
]


def seed(apps, schema_editor):
    alias = schema_editor.connection.alias
    Category = apps.get_model("cases", "Category")
    Attribute = apps.get_model("open311", "ServiceAttribute")
    Value = apps.get_model("open311", "ServiceAttributeValue")
    for category in Category.objects.using(alias).filter(code__in=NOISE_CATEGORIES):
        source, _ = Attribute.objects.using(alias).get_or_create(
            category=category,
            code="noise_source",
            defaults={
                "description": "噪声来源",
                "datatype": "singlevaluelist",
                "datatype_description": "选择一项",
                "required": True,
                "order": 1,
            },
        )
        period, _ = Attribute.objects.using(alias).get_or_create(
            category=category,
            code="time_of_day",
            defaults={
                "description": "时段",
                "datatype": "multivaluelist",
                "datatype_description": "可多选",
                "required": False,
                "order": 2,
            },
        )
        for attribute, values in ((source, SOURCES), (period, PERIODS)):
            for order, (key, name) in enumerate(values, start=1):
                Value.objects.using(alias).get_or_create(
                    attribute=attribute, key=key, defaults={"name": name, "order": order}
                )


def unseed(apps, schema_editor):
    Attribute = apps.get_model("open311", "ServiceAttribute")
    Attribute.objects.using(schema_editor.connection.alias).filter(
        category__code__in=NOISE_CATEGORIES, code__in=["noise_source", "time_of_day"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("open311", "0001_initial"),
        ("cases", "0004_load_categories"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
