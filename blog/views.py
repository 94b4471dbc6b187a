"""The public blog pages: the list of published posts and one post."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Post
from .services import post_published_get, posts_published


def post_list(request: HttpRequest) -> HttpResponse:
    return render(request, "blog/post_list.html", {"posts": posts_published()})


def post_detail(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        post = post_published_get(post_id=post_id)
    except Post.DoesNotExist:
        raise Http404("No such post.") from None
    return render(request, "blog/post_detail.html", {"post": post})
