"""Code that runs inside the Rasa server and its training (Python 3.10, .venvs/rasa).

Rasa imports these modules by their dotted path (config.yml, endpoints.yml, credentials.yml)
with the repository root on PYTHONPATH (stack/train.py `rasa_env`). They import Rasa and
their pinned extras (requirements.txt) only, never the project's Python 3.11 code.
"""
