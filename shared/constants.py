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
ENV_DOCUMENTS_KMS_KEY = "FLOWLESS_DOCUMENTS_KMS_KEY"
ENV_SECRETS_PREFIX = "FLOWLESS_SECRETS_PREFIX"
ENV_SECRETS_KMS_KEY = "FLOWLESS_SECRETS_KMS_KEY"
ENV_SSM_ENDPOINT = "FLOWLESS_SSM_ENDPOINT"
ENV_SEARCH_ENGINE = "FLOWLESS_SEARCH_ENGINE"
ENV_AWS_REGION = "AWS_REGION"
ENV_EVENT_BUS = "FLOWLESS_EVENT_BUS"
ENV_WEBHOOK_QUEUE_URL = "FLOWLESS_WEBHOOK_QUEUE_URL"
ENV_WEBHOOK_ALLOW_HTTP = "FLOWLESS_WEBHOOK_ALLOW_HTTP"
ENV_WEBHOOK_ALLOW_PRIVATE = "FLOWLESS_WEBHOOK_ALLOW_PRIVATE"
ENV_IMPORT_BUCKETS = "FLOWLESS_IMPORT_BUCKETS"

# Local data folder layout.
LOCAL_DB_FILE = "metadata.sqlite3"
LOCAL_BLOB_DIR = "blobs"
LOCAL_INDEX_DIR = "index"
LOCAL_API_KEY_FILE = "api_key"
LOCAL_UPLOAD_DIR = "uploads"
#: The local server's name for its blob folder as a bucket (imports: s3://flowless-local/<key>).
LOCAL_BUCKET_NAME = "flowless-local"

# Key prefixes of the documents bucket: presigned uploads land under uploads/<tenant>/<dataset>/<upload>; a
# tenant imports from the bucket only what is under imports/<tenant>/ (the bucket is shared by all tenants).
UPLOADS_PREFIX = "uploads/"
IMPORTS_PREFIX = "imports/"
#: Where files too big for a plain upload go; RAGFlow's 413 answer names it in its ``data`` (a field RAGFlow
#: clients ignore on errors: they read ``code`` and ``message``, which stay RAGFlow's).
PRESIGNED_UPLOAD_ROUTE = "POST /api/v1/flowless/datasets/{dataset_id}/uploads"
PRESIGNED_UPLOAD_HINT = (
    "The file is larger than a plain upload may be; upload it in parts with " + PRESIGNED_UPLOAD_ROUTE + "."
)

# Key prefixes of the single-table layout (see shared/repos).
API_KEY_PREFIX = "ragflow-"
