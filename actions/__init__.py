"""Custom actions for the Rasa server, one module per capability.

Runs in the project's Python 3.11 environment with rasa-sdk 3.21, which speaks the same
action-server protocol as the Rasa 3.6 server.
"""

import warnings

# rasa-sdk warns when the server's major.minor (3.6) differs from its own (3.21). The
# action-server protocol did not change between them, and this pairing is tested end to end.
warnings.filterwarnings("ignore", message=".*might not be compatible.*")
warnings.filterwarnings("ignore", message=".*version of rasa.*", category=UserWarning)
