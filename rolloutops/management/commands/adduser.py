"""manage.py adduser USERNAME --role ROLE [--role ROLE…] [--password P]; roles are rolloutops.policy.Role."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from rolloutops.audit import audit_record
from rolloutops.policy import Role


class Command(BaseCommand):
    help = "Create a person with a role (or add the role to an existing person)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values, action="append",
                            help=f"one of {', '.join(Role.values)}; repeat for several")
        parser.add_argument("--password", help="without it the account cannot sign in to pages (tokens still work)")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, password=None, email="", **options):
        User = get_user_model()
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username, defaults={"email": email})
            if password:
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            user.save()
            groups = [Group.objects.get(name=r) for r in role]
            user.groups.add(*groups)
            audit_record(actor=None, action="user.created" if created else "user.roles_added", obj=user,
                         object_repr=username, after={"roles": sorted(role)})
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {username} with role(s) {', '.join(sorted(role))}"))
