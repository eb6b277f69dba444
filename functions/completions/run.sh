#!/bin/sh
# Entry point of the streaming function: the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# starts this script and proxies invocations to uvicorn, streaming the response body back.
PATH="/var/lang/bin:$PATH"
export PYTHONPATH="/opt/python:/var/task:${PYTHONPATH:-}"
exec python -m uvicorn functions.completions.app:app --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
    --no-access-log --timeout-keep-alive 60
