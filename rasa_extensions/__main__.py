"""`python -m rasa_extensions run ...`: Rasa's own command line, with the patches applied first.

The Rasa server's command (stack/processes.py, deploy/docker-compose.yml). The arguments go to
Rasa unchanged. The patches (rasa_extensions/patches.py) are applied explicitly here, before
Rasa imports the channel or loads the model, and only on the pinned Rasa version.
"""
from __future__ import annotations

import os
import sys

# One BLAS thread, set before numpy loads: OpenBLAS's second thread otherwise spins in
# sched_yield between the classifier's small matrix products and burned a whole core under load
# (more CPU than Rasa's own event loop in the soak run), leaving the gateway and the action
# server one core between them. The encoders already use one thread (sentence_features.py).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from rasa_extensions import patches  # noqa: E402


def main() -> None:
    applied = patches.apply()
    # Rasa configures logging only after it has read its arguments: say it on stderr now.
    print(f"rasa_extensions: patches applied: {', '.join(applied) or 'none'}", file=sys.stderr, flush=True)
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
