"""Settings as django-scim2's README and docs give them: ``django_scim`` in INSTALLED_APPS, the
mandatory ``SCIM_SERVICE_PROVIDER`` keys (NETLOC, AUTHENTICATION_SCHEMES), and a user and group
model built on its abstract SCIM mixins (the shape of the library's own test models). Adapters,
filter parsers and ServiceProviderConfig are the library's defaults. Storage is SQLite at
``SCIM_DB_PATH``; the bearer token comes from ``SCIM_BEARER_TOKEN``."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "test-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_scim",
    "scimapp",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    # Authentication is the app's own business (django-scim2 docs: "This app does not implement
    # authorization and authentication"): a bearer token sets request.user; the library's
    # SCIMAuthCheckMiddleware (AUTH_CHECK_MIDDLEWARE, applied by its views) refuses the rest.
    "scimapp.auth.BearerTokenMiddleware",
]

ROOT_URLCONF = "scimproject.urls"
AUTH_USER_MODEL = "scimapp.User"
APPEND_SLASH = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SCIM_DB_PATH", "scim.sqlite3"),
        # Django's runserver is threaded: writers take the lock at BEGIN and wait for it (instead of
        # failing with "database is locked" when a read lock cannot be upgraded).
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "UTC"

SCIM_SERVICE_PROVIDER = {
    "NETLOC": os.environ.get("SCIM_NETLOC", "127.0.0.1"),
    "SCHEME": "http",
    "GROUP_MODEL": "scimapp.models.Group",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
        },
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
