"""``python -m lmkit.finetune --config cfg.json`` (also ``accelerate launch -m lmkit.finetune ...``)."""
import sys

from lmkit.finetune.cli import main

sys.exit(main())
