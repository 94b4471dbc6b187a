"""Blog services: publishing a post is recorded in the event log."""

from django.db import transaction
from django.utils import timezone

from events.services import event_append, stream_create
from events.tasks import projection_run_task

from .announcements import PROJECTION
from .events import POST_PUBLISHED, STREAM_KEY
from .models import Post


class AlreadyPublished(Exception):
    """The post was published before; publishing is done once."""


def post_publish(*, post_id: int, actor_id: int | None = None) -> Post:
    """Set published_at and append blog.post.published, in one transaction.

    Subscribers are emailed by the `blog.announcements` projection; it is
    nudged after the commit, so a rolled-back publish announces nothing.
    """
    with transaction.atomic():
        post = Post.objects.select_for_update().get(pk=post_id)
        if post.published_at is not None:
            raise AlreadyPublished(f"Post {post_id} was published at {post.published_at:%Y-%m-%d %H:%M}.")
        post.published_at = timezone.now()
        post.save(update_fields=["published_at"])
        stream = stream_create(key=STREAM_KEY)
        event_append(
            stream_id=stream.pk,
            type=POST_PUBLISHED,
            data={"post_id": post.pk, "title": post.title},
            actor_id=actor_id if actor_id is not None else post.author_id,
        )
        projection_run_task.delay_on_commit(PROJECTION)
    return post


def posts_published() -> list[Post]:
    return list(Post.objects.filter(published_at__isnull=False).select_related("author").order_by("-published_at"))


def post_published_get(*, post_id: int) -> Post:
    """A published post; Post.DoesNotExist for drafts and unknown ids."""
    return Post.objects.select_related("author").get(pk=post_id, published_at__isnull=False)
