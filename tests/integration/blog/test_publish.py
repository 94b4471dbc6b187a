"""Publishing a post: one event, one announcement per subscriber through a real worker
and SMTP server; nothing for a rolled-back publish; the admin action and the pages."""

import uuid

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from blog.events import POST_PUBLISHED
from blog.models import Post
from blog.services import AlreadyPublished, post_publish
from events.models import Event
from notifications.models import OutboxEmail, Preferences
from notifications.outbox import outbox_message_id
from tests.factories import UserFactory
from tests.support.wait import wait_until


def _post(author, **kwargs) -> Post:
    title = kwargs.pop("title", f"Post {uuid.uuid4().hex[:6]}")
    return Post.objects.create(title=title, body=kwargs.pop("body", "Body text.\nMore."), author=author, **kwargs)


def _announcements(post: Post):
    return OutboxEmail.objects.filter(kind="blog", key=f"post:{post.pk}")


def _about(sink, user, post: Post, timeout: float = 30.0):
    """The announcements of `post` received by `user`, once there is one (other posts' are ignored)."""
    wait_until(lambda: sink.to(user.email, "blog") and _of(sink, user, post), timeout, f"the announcement to {user}")
    return _of(sink, user, post)


def _of(sink, user, post: Post):
    return [r for r in sink.to(user.email, "blog") if r.message["Message-ID"] in _message_ids(post, user)]


def _message_ids(post: Post, user) -> set[str]:
    return {outbox_message_id(row) for row in _announcements(post).filter(recipient=user)}


def test_publish_announces_once_to_each_subscriber(celery_worker, smtp_sink, committed):
    author, reader, quiet, reader_ja = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    Preferences.objects.create(user=quiet, blog_email=False)
    Preferences.objects.create(user=reader_ja, language="ja")
    post = _post(author, title="Release <notes> & more")

    published = post_publish(post_id=post.pk)

    assert published.published_at is not None
    event = Event.objects.get(stream__key="blog", type=POST_PUBLISHED, data__post_id=post.pk)
    assert event.data == {"post_id": post.pk, "title": "Release <notes> & more"}
    (received,) = _about(smtp_sink, reader, post)
    assert received.message["Subject"] == "New blog post: Release <notes> & more"
    assert "Release &lt;notes&gt; &amp; more" in received.html
    assert f"http://127.0.0.1:8000/blog/{post.pk}/" in received.text
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (received_ja,) = _about(smtp_sink, reader_ja, post)
    assert received_ja.message["Subject"] == "ブログの新着記事：Release <notes> & more"

    wait_until(lambda: _announcements(post).filter(status="pending").count() == 0, what="all sent")
    assert not _announcements(post).filter(recipient=quiet).exists() and _of(smtp_sink, quiet, post) == []
    count = _announcements(post).count()
    assert {tuple(ids) for ids in _announcements(post).values_list("quoted_user_ids", flat=True)} == {(author.pk,)}

    call_command("rebuild_projection", "blog.announcements")  # replay: nothing twice
    with pytest.raises(AlreadyPublished):
        post_publish(post_id=post.pk)
    assert _announcements(post).count() == count
    assert len(_of(smtp_sink, reader, post)) == 1


def test_publish_rolled_back_sends_nothing(celery_worker, smtp_sink, committed):
    author, reader = UserFactory(), UserFactory()
    doomed, later = _post(author, title="Doomed post"), _post(author, title="Later post")

    with pytest.raises(RuntimeError), transaction.atomic():
        post_publish(post_id=doomed.pk)
        raise RuntimeError("the surrounding work failed")

    post_publish(post_id=later.pk)
    (received,) = _about(smtp_sink, reader, later)  # the projection has passed both publishes
    assert "Later post" in received.message["Subject"]
    doomed.refresh_from_db()
    assert doomed.published_at is None
    assert not Event.objects.filter(type=POST_PUBLISHED, data__post_id=doomed.pk).exists()
    assert not _announcements(doomed).exists()
    assert all("Doomed" not in r.message["Subject"] for r in smtp_sink.received)


def test_admin_publish_action(committed):
    admin = UserFactory(is_staff=True, is_superuser=True)
    post = _post(admin)
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/blog/post/", {"action": "publish", "_selected_action": [post.pk]}, follow=True, secure=True
    )
    assert response.status_code == 200
    post.refresh_from_db()
    assert post.published_at is not None
    assert Event.objects.filter(type=POST_PUBLISHED, data__post_id=post.pk, actor=admin).count() == 1


def test_public_pages_show_published_posts_only(committed):
    author = UserFactory()
    shown = _post(author, title=f"Shown <{uuid.uuid4().hex[:4]}>", body="Hello <b>world</b>")
    draft = _post(author, title=f"Draft {uuid.uuid4().hex[:4]}")
    post_publish(post_id=shown.pk)
    client = Client()

    listing = client.get("/blog/", secure=True)
    assert listing.status_code == 200
    html = listing.content.decode()
    assert shown.title.replace("<", "&lt;").replace(">", "&gt;") in html and draft.title not in html
    assert f'href="/blog/{shown.pk}/"' in html

    detail = client.get(f"/blog/{shown.pk}/", secure=True)
    assert detail.status_code == 200 and "Hello &lt;b&gt;world&lt;/b&gt;" in detail.content.decode()
    assert client.get(f"/blog/{draft.pk}/", secure=True).status_code == 404
