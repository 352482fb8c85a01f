"""Autograd Explorer: record a real autograd run and step through it."""

import os

# Ask CUDA about devices through NVML, so that checking for CUDA in the server process does not
# initialise it: forked workers can only use CUDA when the parent never initialised it.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

__version__ = "0.1.0"
