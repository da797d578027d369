"""Alembic environment: runs on the connection `ayeto.store.migrations.upgrade` hands over."""

from alembic import context

from ayeto.store.migrations import include_object
from ayeto.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
