"""The blog's event type: PostPublished, appended to the stream "blog"."""

from events.schemas import Data, EventType, SchemaError, register, validate_text

POST_PUBLISHED = "blog.post.published"
STREAM_KEY = "blog"


def _validate_post_published(data: Data) -> Data:
    post_id = data.get("post_id")
    if not isinstance(post_id, int) or isinstance(post_id, bool) or post_id <= 0:
        raise SchemaError("'post_id' must be a positive integer.")
    title = validate_text(data.get("title"), field_name="title", max_chars=200)
    return {"post_id": post_id, "title": title}


register(EventType(name=POST_PUBLISHED, version=1, validate=_validate_post_published))
