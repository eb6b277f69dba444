"""The completions group as an ASGI app for uvicorn: what the Lambda Web Adapter runs on AWS
(``AWS_LWA_INVOKE_MODE=response_stream``), so answers stream through API Gateway as they are produced."""

from functions.api.app import create_app
from shared.routes import group_by_name

app = create_app([group_by_name("completions")])
