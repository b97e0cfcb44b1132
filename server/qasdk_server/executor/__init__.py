"""The executor: registered tools run in isolated, pre-started tool processes.

``pool`` hands calls to warm processes and replaces the ones that die or hang,
``process`` is one child seen from the worker (pipes, timeouts, kill),
``child`` is the script that runs in it, ``arguments`` checks and converts a
call's arguments against the registered parameters.
"""

from qasdk_server.executor.arguments import prepare_params
from qasdk_server.executor.pool import Executor

__all__ = ["Executor", "prepare_params"]
