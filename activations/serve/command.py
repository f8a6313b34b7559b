"""`attiva serve`: its flags, and what they do (starlette and uvicorn are imported only when serving)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from activations import settings

DESCRIPTION = """\
Serve the personalization API and event collection (and, with --demo, a storefront page at /).

  GET  /v1/profiles/{id_type}/{value}                     traits, audiences, recommendations, promotions
  GET  /v1/profiles/me                                    the visitor an X-Attiva-Identity token signs
  GET  /v1/audiences/{name}/members/{id_type}/{value}     {"member": true|false}
  POST /v1/events                                         one event, a list, or {"events": [...]}
  GET  /openapi.json                                      the OpenAPI document (also docs/openapi.json)

id_type: email, phone, customer_id, device_id or shop_customer_id (server keys); a browser
key may use only device_id, or /me with an identity token signed with ATTIVA_IDENTITY_SECRET
(docs/security.md).
Answers come from the serving snapshot (ATTIVA_DATA/serving, built by the Dagster asset
serving/store or --build), never from the warehouse; a new snapshot is picked up without
a restart. Events are written to the landing folder (ATTIVA_LANDING) under events/api/.

Keys: callers send `Authorization: Bearer KEY` (or `X-Api-Key: KEY`). The keys file holds only
each key's sha256 with its kind (server or browser), the endpoints and fields it may use and its
rate limit per client address (429 with Retry-After beyond it); `--add-key NAME` creates a key,
prints it once and stores its hash."""


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `attiva serve` flags."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=settings.serve_port(),
                        help=f"port (default ATTIVA_SERVE_PORT or {settings.SERVE_PORT})")
    parser.add_argument("--keys", type=Path, default=None,
                        help="API keys file (default ATTIVA_SERVE_KEYS or serve_keys.yml at the project root)")
    parser.add_argument("--serving", type=Path, default=None,
                        help="serving snapshots folder (default ATTIVA_SERVING or ATTIVA_DATA/serving)")
    parser.add_argument("--build", action="store_true",
                        help="build a fresh snapshot from the warehouse (ATTIVA_WAREHOUSE) before serving")
    parser.add_argument("--demo", action="store_true",
                        help="serve a demo storefront page at / with an in-memory browser key and a demo sign-in "
                             "that signs a token for any email (loopback hosts only; off by default)")
    parser.add_argument("--no-demo", action="store_true", help="no demo page (the default; kept for old scripts)")
    parser.add_argument("--add-key", metavar="NAME", help="create a key NAME in the keys file, print it once, exit")
    parser.add_argument("--fields", help="with --add-key: comma-separated traits and sections the key sees "
                                         "(default all; with --browser all but email and phone)")
    parser.add_argument("--endpoints", help="with --add-key: comma-separated, of profiles,audiences,events (default all)")
    parser.add_argument("--browser", action="store_true",
                        help="with --add-key: a browser key, for web pages: looks up only the visitor itself, sees "
                             "first_name, recommendations and promotions, its events are untrusted unless signed")
    parser.add_argument("--rate", type=float, help="with --add-key: requests per second (default 20)")
    parser.add_argument("--burst", type=int, help="with --add-key: requests allowed at once (default 40)")


def _split(value: str | None) -> list[str] | None:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


def run_from_args(args: argparse.Namespace) -> int:
    """Add a key, or build (optionally) and serve until interrupted."""
    from activations.serve.keys import KeysFileError, add_key, load_keys

    keys_file = Path(args.keys or settings.serve_keys_path())
    try:
        if args.add_key:
            key = add_key(keys_file, args.add_key, fields=_split(args.fields), endpoints=_split(args.endpoints),
                          browser=args.browser, per_second=args.rate, burst=args.burst)
            print(key)
            print(f"key {args.add_key!r} added to {keys_file} (only its sha256 is stored): this is the only time "
                  "it is shown", file=sys.stderr)
            return 0
        keys = load_keys(keys_file)
    except KeysFileError as exc:
        print(f"attiva serve: {exc}", file=sys.stderr)
        return 2
    demo = args.demo and not args.no_demo
    if demo and args.host not in LOOPBACK:
        print(f"attiva serve: --demo signs in anyone who types an email: it serves only on this machine "
              f"({', '.join(LOOPBACK)}), not on {args.host}", file=sys.stderr)
        return 2
    from activations.serve.app import create_app, run
    from activations.serve.store import build_serving_snapshot

    serving = Path(args.serving or settings.serving_dir())
    if args.build:
        warehouse = Path(args.warehouse or settings.warehouse_path())
        if not warehouse.exists():
            print(f"attiva serve: no warehouse at {warehouse}: run `attiva demo` first", file=sys.stderr)
            return 2
        result = build_serving_snapshot(warehouse, serving)
        print(f"serving snapshot {result.version}: {result.customers:,} customers, {result.identifiers:,} "
              f"identifiers, {result.audiences} audiences in {result.seconds:.1f} s", file=sys.stderr)
    app = create_app(keys, serving, demo=demo)
    print(f"attiva serve on http://{args.host}:{args.port} ({len(keys.keys)} key(s) from {keys_file}"
          f"{'; demo page at /' if demo else ''})", file=sys.stderr)
    run(app, args.host, args.port)
    return 0
