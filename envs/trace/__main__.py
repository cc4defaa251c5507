"""``python -m envs.trace``: regenerate the test sample trace (see :func:`~envs.trace.write_sample_trace`)."""

from .samples import write_sample_trace

print(write_sample_trace())
