"""Settings of the test suite: the project's own, with a fast password hasher.

PBKDF2 is slow on purpose (hundreds of thousands of rounds per check); every fixture person pays it
once on creation and again on each sign-in, which was most of the suite's time. The tests prove
roles and sessions, not the hasher."""
from rolloutops.settings import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
