"""The default checklist is data: re-create it after a flush as Django does for permissions."""
import importlib

from .models import ChecklistItem


def ensure_default_checklist(sender, using="default", **kwargs):
    if ChecklistItem.objects.using(using).exists():
        return
    defaults = importlib.import_module("agents.migrations.0002_default_checklist").DEFAULT_ITEMS
    ChecklistItem.objects.using(using).bulk_create([
        ChecklistItem(dimension=dimension, key=key, title=title, description=description, position=(position + 1) * 10)
        for position, (dimension, key, title, description) in enumerate(defaults)
    ])
