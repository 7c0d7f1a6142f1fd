"""The installed apps' static files, less the ones the product never loads (docs/pages.md, "What
the browser loads"): neither collected by `collectstatic` nor answered by `/static/`."""
from fnmatch import fnmatchcase

from django.contrib.staticfiles.finders import AppDirectoriesFinder

# django-ninja ships Redoc beside Swagger UI. The API's docs page is Swagger UI (console/api.py),
# and Redoc's bundle names Redocly's CDN: a file no page loads, but one the app would serve.
NEVER_SERVED = ("ninja/redoc.standalone.js*",)


def never_served(path: str) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in NEVER_SERVED)


class InstalledAppsFinder(AppDirectoriesFinder):
    def find(self, path, find_all=False, **kwargs):
        if never_served(path):
            return []  # what AppDirectoriesFinder answers for a file it does not have
        return super().find(path, find_all=find_all, **kwargs)

    def list(self, ignore_patterns):
        return super().list([*(ignore_patterns or ()), *NEVER_SERVED])
