"""Bearer-token authentication for the SCIM client: a valid token makes the request the SCIM
service account's (an unsaved user, so it never shows among the provisioned users); anything
else stays anonymous and django-scim2's auth check answers 401."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser


class BearerTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.token = os.environ["SCIM_BEARER_TOKEN"]

    def __call__(self, request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), self.token):
            request.user = get_user_model()(username="scim-client")
        else:
            request.user = AnonymousUser()
        return self.get_response(request)
