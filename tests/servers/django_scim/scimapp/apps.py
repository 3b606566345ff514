from django.apps import AppConfig


class ScimAppConfig(AppConfig):
    name = "scimapp"
    default_auto_field = "django.db.models.AutoField"
