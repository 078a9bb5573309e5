from gateway_service.db import metadata
from servicekit.migrations import run_env

run_env(metadata, version_table="alembic_version_gateway")
