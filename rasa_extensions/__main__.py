"""`python -m rasa_extensions run ...`: Rasa's own command line, with the patches applied first.

The Rasa server's command (stack/processes.py, deploy/docker-compose.yml). The arguments go to
Rasa unchanged. The patches (rasa_extensions/patches.py) are applied explicitly here, before
Rasa imports the channel or loads the model, and only on the pinned Rasa version.
"""
from __future__ import annotations

import sys

from rasa_extensions import patches


def main() -> None:
    applied = patches.apply()
    # Rasa configures logging only after it has read its arguments: say it on stderr now.
    print(f"rasa_extensions: patches applied: {', '.join(applied) or 'none'}", file=sys.stderr, flush=True)
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
