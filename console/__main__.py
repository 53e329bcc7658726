"""`python -m console create-user NAME --role admin` and `python -m console serve`."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from store.db import get_database


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("error: the passwords differ")
    return first


def create_user(args: argparse.Namespace) -> int:
    from store.staff import create_user as create

    password = _read_password(args.password_stdin)
    db = get_database()
    db.create_all()  # a first admin is usually created before anything else ran
    try:
        with db.session() as s:
            user = create(s, args.name, password, args.role)
            print(f"created {user.role} {user.username!r}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from console.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    db = get_database()
    db.create_all()
    app = create_app(db)
    # proxy_headers: behind a TLS proxy, the client address and scheme come from it.
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True,
                forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
    return 0


def demo_data(args: argparse.Namespace) -> int:
    from store.demo import seed

    db = get_database()
    db.create_all()
    try:
        seed(db)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("demo data added")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console", description="SCORE staff console")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create-user", help="create a console login")
    p.add_argument("name")
    p.add_argument("--role", choices=("staff", "admin"), default="staff")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    p.set_defaults(func=create_user)
    p = sub.add_parser("serve", help="start the console web server (uvicorn)")
    p.add_argument("--host", default=os.environ.get("CONSOLE_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("CONSOLE_PORT", "8080")))
    p.set_defaults(func=serve)
    p = sub.add_parser("demo-data", help="fill an EMPTY store with demo conversations")
    p.set_defaults(func=demo_data)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
