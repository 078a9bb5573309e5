"""What the tasks service's handlers receive."""

from __future__ import annotations

from servicekit.context import Context
from tasks_service.settings import TasksSettings
from tasks_service.store import TasksStore

TasksContext = Context[TasksSettings, TasksStore]
