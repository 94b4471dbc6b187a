"""The `blog.announcements` projection: each blog.post.published event queues one
email per subscriber (users who did not switch blog emails off), keyed by the
post, so a replay queues nothing twice."""

from collections.abc import Sequence

from django.conf import settings
from django.urls import reverse

from events.models import Event
from events.schemas import upcast
from notifications.drafting import email_draft
from notifications.links import absolute_url
from notifications.outbox import outbox_enqueue
from notifications.preferences import Recipient, recipients_opted_in

from .events import POST_PUBLISHED
from .models import Post

PROJECTION = "blog.announcements"
_EXCERPT_CHARS = 500


class AnnouncementsProjection:
    name = PROJECTION

    def apply(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.type == POST_PUBLISHED:
                data = upcast(event.type, event.schema_version, event.data)
                self._announce(post_id=data["post_id"], title=data["title"])

    def _announce(self, *, post_id: int, title: str) -> None:
        post = Post.objects.select_related("author").filter(pk=post_id).first()
        body = post.body if post is not None else ""
        context = {
            "title": title,
            "author": post.author.get_username() if post is not None else "",
            "excerpt": body if len(body) <= _EXCERPT_CHARS else body[: _EXCERPT_CHARS - 1] + "…",
            "url": absolute_url(reverse("blog:post_detail", args=[post_id])),
        }
        batch_size = settings.BLOG_EMAIL_BATCH_SIZE
        batch = []
        for row in recipients_opted_in(kind="blog").order_by("id").iterator(chunk_size=batch_size):
            recipient = Recipient(
                user_id=row["id"], username=row["username"], email=row["email"], language=row["language"]
            )
            batch.append(
                email_draft(
                    recipient=recipient,
                    kind="blog",
                    key=f"post:{post_id}",
                    template="email/blog_post",
                    context=context,
                    quoted_user_ids=[post.author_id] if post is not None else [],
                )
            )
            if len(batch) >= batch_size:
                outbox_enqueue(drafts=batch)
                batch = []
        outbox_enqueue(drafts=batch)
