from servicekit.migrations import run_env
from support_service.db import metadata

run_env(metadata, version_table="alembic_version_support")
