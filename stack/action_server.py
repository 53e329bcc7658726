"""`python -m stack.action_server --actions actions --port N`: rasa-sdk's action server in one
process. `python -m rasa_sdk` runs Sanic's process manager, which spawns the worker as a second
process; both import the actions, the store and SQLAlchemy (two Python processes, about 210 MB
resident in bench/rasa_bench.py). With one worker the manager buys nothing: scale out with
more action server containers behind one address (docs/deployment.md).
Same arguments, same app (rasa-sdk's create_app_for_serve), same logging as `python -m rasa_sdk`.
"""
from __future__ import annotations

import logging
import os

from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic

from store import get_database


def main() -> None:
    args = create_argument_parser().parse_args()
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()
    executor = ActionExecutor()
    executor.register_package(args.actions_module or args.actions)
    get_database().warm()  # the pool's connections from the start
    app = create_app_for_serve(executor, cors_origins=args.cors, endpoints=args.endpoints)
    app.prepare(host=os.environ.get("SANIC_HOST", "127.0.0.1"), port=args.port, single_process=True)
    Sanic.serve_single(primary=app)


if __name__ == "__main__":
    main()
