"""`python -m rolloutops_client …`: see rolloutops_client.cli."""
import sys

from .cli import main

sys.exit(main())
