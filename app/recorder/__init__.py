"""The recorder: runs a program (or takes live tensors) and records its autograd graph, forward
calls and every backward pass the engine ran, as a Graph."""

from app.recorder.autograd_facts import writes_in_place
from app.recorder.live import trace_callable, trace_tensors
from app.recorder.options import TraceOptions, most_passes, resolve_device
from app.recorder.process import PausedCollections, release_held_graphs
from app.recorder.program import ProgramExit, record_error, record_program
from app.recorder.recorder import Recorder
from app.recorder.source import PROGRAM_FILENAME

__all__ = [
    "PROGRAM_FILENAME",
    "PausedCollections",
    "ProgramExit",
    "Recorder",
    "TraceOptions",
    "most_passes",
    "record_error",
    "record_program",
    "release_held_graphs",
    "resolve_device",
    "trace_callable",
    "trace_tensors",
    "writes_in_place",
]
