"""manage.py issue_token USERNAME --scopes s1,s2 [--name N] [--expires-days D]"""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from rolloutops.exceptions import DomainError
from rolloutops.policy import Scope
from rolloutops.tokens import token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user. The token is printed once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--scopes", required=True, help="comma-separated, of: " + ",".join(Scope.values))
        parser.add_argument("--name", default="")
        parser.add_argument("--expires-days", type=int, default=None, help="default: never expires (revoke it instead)")

    def handle(self, *args, username, scopes, name, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}; create one with: manage.py adduser {username} --role operator")
        try:
            token, raw = token_issue(user=user, scopes=scopes, name=name, expires_in_days=expires_days)
        except DomainError as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stderr.write(f"Token {token.name!r} for {username} with scopes {', '.join(token.scopes)}. "
                          "Store it now: it cannot be shown again.")
        self.stdout.write(raw)
