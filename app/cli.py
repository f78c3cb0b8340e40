"""The `datagate` command: `datagate serve` runs the service."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence

import uvicorn


def _serve(args: argparse.Namespace) -> int:
    from app.core.config import Settings
    from app.core.logging import configure_logging
    from app.core.security import UnsafeConfiguration, check_startup
    from app.main import create_app

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if args.workers is not None:
        overrides["workers"] = args.workers
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    try:
        check_startup(settings, settings.host)
    except UnsafeConfiguration as exc:
        print(f"datagate: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )
    GracefulServer(config).run()
    return 0


class GracefulServer(uvicorn.Server):
    """uvicorn's server, but a SIGTERM that ended in a clean shutdown exits 0.

    uvicorn re-raises the signal after shutting down, so the process would die of it (143):
    orchestrators and tests could not tell a clean stop from a kill.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datagate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (default DATAGATE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default DATAGATE_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="validation worker processes")
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
