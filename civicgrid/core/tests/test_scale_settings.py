"""Optional scale-out settings: media on S3-compatible storage, a shared cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings
from moto import mock_aws

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Attachment, AttachmentKind, Case
from civicgrid.cases.tests.test_attachments import photo, upload
from civicgrid.settings import cache_from_url

BUCKET = "civicgrid-media-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process S3 (moto) with one bucket, and the media storage pointed at it."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "cn-northwest-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3", region_name="cn-northwest-1").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-northwest-1"}
        )
        storages = {
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": BUCKET,
                    "region_name": "cn-northwest-1",
                    "location": "media",
                    "default_acl": "private",
                    "file_overwrite": False,
                },
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with override_settings(STORAGES=storages):
            yield


def test_photos_are_stored_in_the_bucket_and_served_through_the_api(
    s3: None, new_case: Callable[..., Case], call_taker: User, client: Client
) -> None:
    case = new_case()
    data = photo((80, 60))
    (attachment,) = services.attach_photos(
        case=case, actor=call_taker, uploads=[upload(data)], kind=AttachmentKind.BEFORE
    )

    keys = {
        item["Key"]
        for item in boto3.client("s3", region_name="cn-northwest-1").list_objects_v2(Bucket=BUCKET)[
            "Contents"
        ]
    }
    stored = Attachment.objects.get(pk=attachment.pk)
    assert f"media/{stored.file.name}" in keys
    assert f"media/{stored.thumbnail.name}" in keys

    client.force_login(call_taker)
    response = client.get(f"/api/v1/cases/{case.pk}/attachments/{attachment.pk}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body[:3] == b"\xff\xd8\xff"  # the cleaned JPEG, read back from S3
    assert response["Content-Type"] == "image/jpeg"


def test_cache_urls() -> None:
    assert cache_from_url("") == {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    assert cache_from_url("redis://cache.internal:6379/1") == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/1",
    }
    assert cache_from_url("db://shared_cache")["LOCATION"] == "shared_cache"
    with pytest.raises(ValueError, match="memcache"):
        cache_from_url("memcache://x")


@pytest.mark.django_db(transaction=True)
def test_the_database_cache_is_shared(transactional_db: None) -> None:
    """db:// keeps counters in a table every process reads (here: two cache objects)."""
    config = {
        "default": cache_from_url("db://civicgrid_cache"),
        "other": cache_from_url("db://civicgrid_cache"),
    }
    with override_settings(CACHES=config):
        call_command("createcachetable", verbosity=0)
        first, second = caches["default"], caches["other"]
        first.set("portal:rate:1.2.3.4", 0, 60)
        first.incr("portal:rate:1.2.3.4")
        assert second.incr("portal:rate:1.2.3.4") == 2
