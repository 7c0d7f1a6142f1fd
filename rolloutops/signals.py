"""Audit entries for events Django and django-axes raise themselves (failed sign-ins, lockouts), a
person's time zone read once at sign-in, and the role groups after a flush."""
import logging

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from .audit import audit_record
from .policy import Role
from .timezones import remember, time_zone_of


@receiver(user_logged_in, dispatch_uid="rolloutops.time_zone_at_sign_in")
def time_zone_at_sign_in(sender, request=None, user=None, **kwargs):
    # Into the new session with the sign-in's own write, so no page pays a query for it.
    if request is not None and hasattr(request, "session"):
        remember(request, time_zone_of(user))


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


@receiver(user_locked_out, dispatch_uid="rolloutops.audit_locked_out")
def audit_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    # django-axes sends this on the failure that reaches the limit (and again for attempts during
    # the lockout); the lockout itself is one event, the failure that caused it.
    if request is None or getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    username = str(username or "")[:150]
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    logging.getLogger("rolloutops.auth").warning(
        "sign-in locked out", extra={"username": username, "source_ip": ip_address, "minutes": minutes})
    user_id = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).values_list("pk", flat=True).first()
    audit_record(actor=None, action="auth.locked_out", object_type="auth.user", object_id=user_id or "",
                 object_repr=username, source_ip=ip_address or None,
                 after={"username": username, "failures": settings.AXES_FAILURE_LIMIT, "locked_minutes": minutes})


def ensure_role_groups(sender, using="default", **kwargs):
    # Migration 0002 creates the groups once; a flush (transactional tests, `manage.py flush`)
    # empties the table and emits post_migrate, so they are re-created here as Django does
    # for content types and permissions; a role added to rolloutops/policy.py gets its group here.
    for name in Role.values:
        Group.objects.using(using).get_or_create(name=name)
