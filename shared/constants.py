"""Names shared by the application code and the CDK app (one source for both)."""

from __future__ import annotations

SERVICE_NAME = "flowless"
METRICS_NAMESPACE = "Flowless"
API_PREFIX = "/api/v1"

# Environment variables read by shared.config.Settings (prefix FLOWLESS_).
ENV_BACKEND = "FLOWLESS_BACKEND"
ENV_DATA_DIR = "FLOWLESS_DATA_DIR"
ENV_TABLE_NAME = "FLOWLESS_TABLE_NAME"
ENV_DYNAMODB_ENDPOINT = "FLOWLESS_DYNAMODB_ENDPOINT"
ENV_DOCUMENTS_BUCKET = "FLOWLESS_DOCUMENTS_BUCKET"
ENV_S3_ENDPOINT = "FLOWLESS_S3_ENDPOINT"
ENV_STATE_MACHINE_ARN = "FLOWLESS_STATE_MACHINE_ARN"
ENV_BUILD_STATE_MACHINE_ARN = "FLOWLESS_BUILD_STATE_MACHINE_ARN"
ENV_OPENSEARCH_ENDPOINT = "FLOWLESS_OPENSEARCH_ENDPOINT"
ENV_AWS_REGION = "AWS_REGION"

# Local data folder layout.
LOCAL_DB_FILE = "metadata.sqlite3"
LOCAL_BLOB_DIR = "blobs"
LOCAL_INDEX_DIR = "index"
LOCAL_API_KEY_FILE = "api_key"

# Key prefixes of the single-table layout (see shared/repos).
API_KEY_PREFIX = "ragflow-"
