"""Audit entries for events Django raises itself (failed sign-ins), and the role groups after a flush."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from .audit import audit_record
from .policy import Role


@receiver(user_login_failed, dispatch_uid="rolloutops.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # Only the attempted username is kept: Django already masks the password in `credentials`,
    # and the trail must never hold a secret, even a wrong one.
    User = get_user_model()
    username = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")[:150]
    user_id = User.objects.filter(**{User.USERNAME_FIELD: username}).values_list("pk", flat=True).first()
    source_ip = (request.META.get("REMOTE_ADDR") or None) if request is not None else None
    audit_record(actor=None, action="auth.login_failed", object_type="auth.user", object_id=user_id or "",
                 object_repr=username, after={"username": username}, source_ip=source_ip)


def ensure_role_groups(sender, using="default", **kwargs):
    # Migration 0002 creates the groups once; a flush (transactional tests, `manage.py flush`)
    # empties the table and emits post_migrate, so they are re-created here as Django does
    # for content types and permissions; a role added to rolloutops/policy.py gets its group here.
    for name in Role.values:
        Group.objects.using(using).get_or_create(name=name)
