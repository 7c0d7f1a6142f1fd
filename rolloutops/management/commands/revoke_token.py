"""manage.py revoke_token NAME_OR_PREFIX [--user USERNAME]"""
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from rolloutops.models import ApiToken
from rolloutops.tokens import token_revoke


class Command(BaseCommand):
    help = "Revoke API tokens by name or by the prefix shown when listing them."

    def add_arguments(self, parser):
        parser.add_argument("name_or_prefix")
        parser.add_argument("--user", default=None)

    def handle(self, *args, name_or_prefix, user, **options):
        tokens = ApiToken.objects.filter(Q(name=name_or_prefix) | Q(prefix=name_or_prefix), revoked_at=None)
        if user:
            tokens = tokens.filter(user__username=user)
        tokens = list(tokens)
        if not tokens:
            raise CommandError(f"no active token named or prefixed {name_or_prefix!r}")
        for token in tokens:
            token_revoke(token=token)
            self.stdout.write(f"revoked {token}")
