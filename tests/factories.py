"""factory-boy factories. Events are never built here: tests append them
through the services, as the product does."""

import uuid

import factory
from django.contrib.auth import get_user_model


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    # Unique across runs too: integration tests commit, and the test database is kept per session.
    username = factory.Sequence(lambda n: f"user{n}-{uuid.uuid4().hex[:8]}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()
