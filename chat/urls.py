from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("api/rooms/<str:room>/events", views.room_events, name="room_events"),
]
