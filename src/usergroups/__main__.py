"""`python -m usergroups`."""

import sys

from usergroups.cli.main import main

sys.exit(main())
