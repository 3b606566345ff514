#!/usr/bin/env python
"""A minimal Django app serving SCIM 2.0 with django-scim2 (its default adapters and filters),
for the tests: ``SCIM_DB_PATH=... SCIM_BEARER_TOKEN=... python manage.py runserver 127.0.0.1:P --noreload``."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scimproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
