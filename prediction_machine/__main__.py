"""python -m prediction_machine: the same commands as `prediction-machine`."""

import sys

from prediction_machine.cli import main

sys.exit(main())
