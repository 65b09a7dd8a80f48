import sys

from segcolor.cli import main

sys.exit(main())
