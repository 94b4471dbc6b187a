"""Admin for posts, with a "publish" action that calls the publish service."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from events.adminquery import StrictChangeListAdmin

from .models import Post
from .services import AlreadyPublished, post_publish


@admin.register(Post)
class PostAdmin(StrictChangeListAdmin[Post]):
    list_display = ["title", "author", "created_at", "published_at"]
    list_filter = ["published_at"]
    search_fields = ["title", "body"]
    readonly_fields = ["published_at", "created_at"]
    actions = ["publish"]

    @admin.action(description="Publish the selected posts (emails subscribers)")
    def publish(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        published = 0
        for post in queryset.order_by("pk"):
            try:
                post_publish(post_id=post.pk, actor_id=request.user.pk)
            except AlreadyPublished as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
            else:
                published += 1
        if published:
            self.message_user(request, f"Published {published} post(s).", level=messages.SUCCESS)
