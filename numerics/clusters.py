"""Executors on a Dask or Ray cluster (``--executor dask[:ADDRESS]``, ``--executor ray[:ADDRESS]``).

Without an address each starts a local cluster of ``jobs`` single-threaded worker processes
(one per CPU by default) and shuts it down on :meth:`close`; with one it connects to a running
cluster (Dask: the scheduler's address, e.g. ``tcp://10.0.0.5:8786``; Ray: ``auto`` or
``ray://head:10001``) and leaves it running.  The engines are optional dependencies
(``pip install 'ibcheck[dask]'`` or ``'ibcheck[ray]'``), imported only here.

Tasks run :func:`numerics.executor.remote_task`: the run's thread policy, no progress bars, a
failing task becomes :class:`~numerics.executor.Failed`; a task the engine itself loses (a
worker killed twice, a lost node) is reported as ``Failed`` with the engine's message and the
other tasks go on.  Progress messages are not forwarded (the overall bar still advances).
Time limits work on cluster workers too: Dask runs tasks in worker threads, and
:func:`theory.timeouts.time_limit` limits the CPU time of any thread.
"""

from __future__ import annotations

import importlib
import logging

from theory.errors import IbcheckError

from . import threads
from .executor import Executor, Failed, default_jobs, remote_task

#: the pip extra that installs each engine
EXTRAS = {"dask": "ibcheck[dask]  (dask, distributed)", "ray": "ibcheck[ray]  (ray)"}


def _engine(module: str, engine: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise IbcheckError(f"--executor {engine} needs {engine}: pip install {EXTRAS[engine]}") from None


def _lost(engine: str, err: BaseException) -> Failed:
    return Failed(f"the {engine} cluster lost this task: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")


class DaskExecutor(Executor):
    """Tasks as futures of a ``dask.distributed`` client (module docstring)."""

    def __init__(self, address: str | None = None, jobs: int | None = None, timeout: float = 30):
        distributed = _engine("distributed", "dask")
        self.cluster = None
        self.share: int | None = None  # a remote worker's CPUs: its own business
        if address is None:
            workers = max(1, jobs or default_jobs())
            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                    dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
            self.share = workers
            self.description = f"Dask local cluster, {workers} worker process{'es' * (workers != 1)}"
        else:
            try:
                self.client = distributed.Client(address, timeout=timeout)
            except (OSError, TimeoutError, ValueError) as err:
                raise IbcheckError(f"--executor dask:{address}: cannot reach the scheduler ({err})") from None
            self.description = f"Dask cluster at {address}"

    def run(self, work, items, notify=None):
        distributed = _engine("distributed", "dask")
        futures = {self.client.submit(remote_task, work, item, threads.policy(), self.share, pure=False): index
                   for index, item in enumerate(items)}
        try:
            for future in distributed.as_completed(futures):
                try:
                    value = future.result()
                except Exception as err:  # noqa: BLE001 - a lost worker, a task killed twice
                    value = _lost("dask", err)
                yield futures[future], value
        finally:
            self.client.cancel(list(futures))  # nothing left over on an interrupt

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class RayExecutor(Executor):
    """Tasks as Ray remote functions (module docstring)."""

    def __init__(self, address: str | None = None, jobs: int | None = None):
        self.ray = _engine("ray", "ray")
        self.owns = not self.ray.is_initialized()
        self.share: int | None = None
        if address is None:
            workers = max(1, jobs or default_jobs())
            self.share = workers
            self.description = f"Ray local cluster, {workers} CPU{'s' * (workers != 1)}"
            options = {"num_cpus": workers}
        else:
            self.description = f"Ray cluster at {address}"
            options = {"address": address}
        if self.owns:
            try:
                self.ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **options)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise IbcheckError(f"--executor ray{':' + address if address else ''}: cannot start or reach "
                                   f"Ray ({err})") from None

    def run(self, work, items, notify=None):
        task = self.ray.remote(num_cpus=1)(remote_task)
        pending = {task.remote(work, item, threads.policy(), self.share): index for index, item in enumerate(items)}
        try:
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                try:
                    value = self.ray.get(done[0])
                except Exception as err:  # noqa: BLE001 - RayError: a lost worker or node
                    value = _lost("ray", err)
                yield index, value
        finally:
            for ref in pending:
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.owns and self.ray.is_initialized():
            self.ray.shutdown()


def cluster_executor(engine: str, address: str | None, jobs: int | None) -> Executor:
    """The executor ``--executor ENGINE[:ADDRESS]`` names (``engine``: ``dask`` or ``ray``)."""
    return (DaskExecutor if engine == "dask" else RayExecutor)(address, jobs)
