"""The ``dask`` executor: sweep cells on a ``dask.distributed`` cluster, an existing one
(``scheduler`` = its address, e.g. ``tcp://10.0.0.5:8786``, or a Slurm cluster from
dask-jobqueue) or a LocalCluster started here. Dask is imported only when one starts."""

from __future__ import annotations

from typing import Any

from stelab.errors import ConfigError
from stelab.sweep.executors import Executor, ExecutorError, available_cores

__all__ = ["DaskExecutor"]


class DaskExecutor(Executor):
    """``dask.distributed``: connect to ``scheduler``, or start a LocalCluster of ``workers``
    single-threaded worker processes (``processes=False``: threads in this process)."""

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        processes: bool = True,
        client: Any = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers: {workers} is not allowed; allowed: >= 1")
        self.scheduler = scheduler
        self.workers = workers
        self.processes = processes
        self._client = client
        self._own_client = client is None
        self._cluster: Any = None
        self._futures: list[Any] = []

    def start(self) -> None:
        if self._client is not None:
            return
        import logging

        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as err:
                raise ExecutorError(
                    f"--scheduler: cannot connect to a Dask scheduler at {self.scheduler!r} ({err})"
                ) from None
            return
        n = self.workers or available_cores()
        try:
            self._cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=self.processes,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        except (RuntimeError, OSError) as err:
            raise ExecutorError(_local_cluster_failure(err)) from None
        self._client = Client(self._cluster)

    @property
    def client(self) -> Any:
        self.start()
        return self._client

    def _workers_info(self) -> list[dict[str, Any]]:
        try:
            return list(self.client.scheduler_info(n_workers=-1)["workers"].values())
        except TypeError:  # older distributed without n_workers
            return list(self.client.scheduler_info()["workers"].values())

    @property
    def slots(self) -> int:
        threads = sum(int(w.get("nthreads", 1)) for w in self._workers_info())
        return max(1, threads)

    def memory_per_slot(self) -> int | None:
        limits = [
            int(w["memory_limit"]) // max(1, int(w.get("nthreads", 1)))
            for w in self._workers_info()
            if w.get("memory_limit")
        ]
        return min(limits) if limits else None

    def threads_per_slot(self) -> int | None:
        # our own worker processes each run one cell at a time; elsewhere leave the cluster's
        # setting (dask starts workers with OMP_NUM_THREADS=1 by default)
        if self._cluster is not None and self.processes:
            return max(1, available_cores() // max(1, self.workers or available_cores()))
        return None

    def describe(self) -> str:
        if self._cluster is not None:
            where = "LocalCluster" + ("" if self.processes else ", threads")
        else:
            where = self.scheduler or getattr(self.client.scheduler, "address", "client")
        return f"dask ({where}, {self.slots} worker threads)"

    def close(self) -> None:
        self._futures = []
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def abort(self) -> None:
        if self._client is not None and self._futures:
            try:
                self._client.cancel(self._futures, force=True)
            except Exception:  # noqa: BLE001 - best effort while stopping
                pass
        self.close()

    def map_unordered(self, fn, items):  # type: ignore[no-untyped-def]
        import uuid

        from distributed import as_completed

        client = self.client
        tag = uuid.uuid4().hex[:8]
        futures = [
            client.submit(fn, item, key=f"stelab-cell-{tag}-{i}", pure=False)
            for i, item in enumerate(items)
        ]
        self._futures = futures
        index = {fut.key: i for i, fut in enumerate(futures)}
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status == "finished":
                result = fut.result()
            elif fut.status == "cancelled":
                result = ExecutorError("the Dask task was cancelled (scheduler lost or restarted)")
            else:
                result = fut.exception()  # e.g. KilledWorker after repeated worker deaths
            fut.release()
            yield i, result
        self._futures = []


def _local_cluster_failure(err: BaseException) -> str:
    """The one line for a Dask LocalCluster whose worker processes did not start. Dask spawns
    them the standard way, which re-runs the script that started the sweep: unguarded, the
    script's sweep starts again in each of them and fails (the folder is locked)."""
    import sys

    script = getattr(sys.modules.get("__main__"), "__file__", None)
    cause = (f"its worker processes re-run your script {script} (Dask starts them that way); "
             "put the sweep under 'if __name__ == \"__main__\":', or use the local executor, "
             "which needs no guard" if script else "see the messages above")
    return f"--executor dask: the Dask LocalCluster did not start ({err}); {cause}"
