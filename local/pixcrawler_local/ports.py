"""A port already taken gets a sentence telling the user what to do, not a traceback from a server thread."""

from __future__ import annotations

import errno
import socket


class PortInUse(RuntimeError):
    def __init__(self, host: str, port: int, what: str, option: str) -> None:
        super().__init__(
            f"{host}:{port} is already in use, so the {what} cannot listen there. Stop whatever holds it "
            f"(another `pixcrawler serve`?) or choose another port with {option}."
        )


def check_port(host: str, port: int, what: str, option: str) -> None:
    """Before starting a server that would report a taken port badly: moto's binds in a thread (start() then
    waits forever), Werkzeug's prints and exits the process."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(host, port, what, option) from error
            raise
