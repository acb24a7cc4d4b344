import sys

from videodrop.cli import main

sys.exit(main())
