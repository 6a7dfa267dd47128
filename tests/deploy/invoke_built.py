"""Run one BUILT Lambda function the way the Python 3.12 runtime does, outside the source tree.

Usage: python3.12 -I -S invoke_built.py FUNCTION_DIR LAYER_DIR RUNTIME_DIR EVENT_JSON RESULT_JSON

`-I -S` leaves only the standard library on sys.path; this puts back what Lambda has: the function's code
(/var/task), the layer (/opt/python) and the runtime's boto3 (RUNTIME_DIR). It writes the handler's return
value, and where each module came from, to RESULT_JSON.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any


class Context:
    function_name = "built"
    function_version = "1"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:built"
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/built"
    log_stream_name = "stream"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 120_000


def main(function_dir: str, layer_dir: str, runtime_dir: str, event_path: str, result_path: str) -> None:
    sys.path[:0] = [function_dir, layer_dir, runtime_dir]
    app = importlib.import_module("app")
    event: dict[str, Any] = json.loads(Path(event_path).read_text())
    result = app.lambda_handler(event, Context())
    origins = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("app", "pixcrawler", "pydantic")}
    Path(result_path).write_text(json.dumps({"result": result, "origins": origins, "path": sys.path}, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:6])
