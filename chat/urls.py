from django.urls import path

from . import pages, views

app_name = "chat"

urlpatterns = [
    path("", pages.room_list, name="room_list"),
    path("rooms/new/", pages.room_create, name="room_create"),
    path("chat/<str:room>/", pages.room_page, name="room"),
    path("api/rooms/<str:room>/events", views.room_events, name="room_events"),
    path("api/search", views.search, name="search_api"),
    path("search/", pages.search_page, name="search"),
]
