"""User and group on django-scim2's abstract mixins, as in the library's own test models: the
user's ``scim_groups`` is the membership, seen from the group as ``user_set`` (what the default
SCIMUser/SCIMGroup adapters read and write)."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class Group(AbstractSCIMGroupMixin):
    name = models.CharField("name", max_length=150, unique=True)


class User(AbstractSCIMUserMixin, AbstractUser):
    scim_groups = models.ManyToManyField(Group, related_name="user_set", blank=True)
