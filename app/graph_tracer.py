"""The recorder's earlier import path, which the README named for trace_callable and
trace_tensors: kept so code written against it still runs. New code imports app.recorder."""

from app.recorder import *  # noqa: F403
