"""A minimal Lambda Runtime API client: what AWS's Python runtime does around a handler.

The benchmark's Python reference functions run under the same local Lambda harness as the Rust
binaries: `python runtime.py <module>` imports the module (its init: boto3 clients built once per cold
start, as a Lambda would), then loops on /next, calls `module.handler(event, context)` and posts the
result or the error. Standard library only; the handler modules use boto3.
"""

import importlib
import json
import os
import sys
import time
import traceback
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


class Context:
    def __init__(self, request_id, deadline_ms, function_arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def post(path, body, headers=None):
    data = json.dumps(body).encode()
    request = urllib.request.Request(API + path, data=data, method="POST", headers=headers or {})
    urllib.request.urlopen(request).read()


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        handler = importlib.import_module(sys.argv[1]).handler
    except Exception as e:  # an init error, reported as Lambda does
        post("/init/error", {"errorMessage": str(e), "errorType": type(e).__name__})
        raise
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline = int(response.headers.get("Lambda-Runtime-Deadline-Ms", "0"))
            arn = response.headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
            event = json.loads(response.read() or b"null")
        try:
            result = handler(event, Context(request_id, deadline, arn))
            post(f"/invocation/{request_id}/response", result)
        except Exception as e:
            traceback.print_exc()
            post(
                f"/invocation/{request_id}/error",
                {"errorMessage": str(e), "errorType": type(e).__name__},
                {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
            )


if __name__ == "__main__":
    main()
