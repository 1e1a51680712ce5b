"""``python -m fyi_apps.cli`` is ``fyi``."""
import sys

from . import main

sys.exit(main())
