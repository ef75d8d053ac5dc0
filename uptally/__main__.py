import sys

from uptally.cli import main

sys.exit(main())
