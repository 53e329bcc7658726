"""Everything that runs inside the Rasa server and its training (Python 3.10, .venvs/rasa).

- `python -m rasa_extensions run ...` (__main__.py): Rasa's command line with the patches
  applied first (patches.py: the list; speedups.py: the speed-ups; pinned.py: the version).
- gateway_channel.py: the gateway's input channel (credentials.yml) and its processor hook.
- tracker_store.py, lock_store.py: the bounded SQL tracker store and the atomic Redis lock
  store (endpoints.yml).
- sentence_features.py, intent_classifier.py: NLU components (config.yml).
- rasa_contract.py: the Rasa symbols these rely on, as in the pinned Rasa (a test checks them).
- requirements.txt: Rasa and the extras, installed by scripts/setup.sh and deploy/rasa.Dockerfile.

Rasa imports these modules by their dotted path (config.yml, endpoints.yml, credentials.yml)
with the directory holding this package on PYTHONPATH (stack/train.py `rasa_env`; /app in the
image). They import Rasa and the pinned extras only, never the project's Python 3.11 code, and
the project's Python 3.11 code never imports them.
"""
