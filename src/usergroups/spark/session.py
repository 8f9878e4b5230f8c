"""Start (or reuse) a SparkSession for the Spark engine.

PySpark is an optional dependency (``pip install 'usergroups[spark]'``) and needs a Java
runtime (17 or newer). Workers run the same Python as the driver unless
``PYSPARK_PYTHON`` says otherwise, so the encoder and numpy are importable there.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Mapping
from typing import Any

from usergroups._deps import require
from usergroups.errors import ConfigError, MissingDependencyError

__all__ = ["DEFAULT_CONF", "CpuMeter", "parse_conf", "spark_session"]

logger = logging.getLogger(__name__)

DEFAULT_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    # one Arrow batch is one call of the encoder: big enough to keep it busy, small
    # enough for a worker's memory
    "spark.sql.execution.arrow.maxRecordsPerBatch": "4096",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
    "spark.driver.memory": "4g",
    # dates without a zone are UTC, as the local reader reads them
    "spark.sql.session.timeZone": "UTC",
}
"""Settings used unless the caller gives their own (``--conf key=value``)."""


def parse_conf(values: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse ``["spark.x=1", ...]`` into a dict; only ``spark.*`` keys are accepted.

    Examples
    --------
    >>> parse_conf(["spark.sql.shuffle.partitions=4"])
    {'spark.sql.shuffle.partitions': '4'}
    """
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(
                f"--conf expects KEY=VALUE, got {item!r}; e.g. spark.driver.memory=8g"
            )
        if not key.startswith("spark."):
            raise ConfigError(
                f"--conf {key!r} is not a Spark setting; keys start with 'spark.' "
                "(e.g. spark.executor.memory=8g); use --set for usergroups settings"
            )
        out[key] = value.strip()
    return out


def spark_session(
    master: str | None = "local[2]",
    conf: Mapping[str, str] | None = None,
    *,
    app_name: str = "usergroups",
) -> Any:
    """A SparkSession for ``master`` with ``conf`` on top of :data:`DEFAULT_CONF`.

    An active session is reused (Spark allows one per driver); its runtime settings are
    updated where Spark allows it.

    Parameters
    ----------
    master : str or None
        ``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; None leaves it to
        ``spark-submit``.
    conf : mapping of str to str, optional
        ``spark.*`` settings.

    Raises
    ------
    MissingDependencyError
        When PySpark or a Java runtime is missing.
    """
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise MissingDependencyError(
            "the Spark engine needs a Java runtime (17 or newer) and found none; install one, "
            "e.g. apt-get install openjdk-17-jre-headless, or set JAVA_HOME"
        )
    # the workers must import usergroups, numpy and the encoder: run them on our Python
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {**DEFAULT_CONF, **dict(conf or {})}
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in settings.items():
            if key.startswith("spark.sql."):
                active.conf.set(key, value)
        return active
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    logger.info("Spark %s session on %s", spark.version, spark.sparkContext.master)
    return spark


def _proc_stats() -> dict[int, tuple[int, float]]:
    """Every process's ``(parent pid, own CPU seconds)`` (user + system) from /proc."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    out: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                # fields after the command name (which may hold spaces and parentheses)
                fields = fh.read().rsplit(")", 1)[1].split()
            out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we read
    return out


def _jvm_pid(spark: Any) -> int | None:
    """The pid of the JVM when it is a child of this process (``spark-submit`` execs java)."""
    proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    return None if proc is None or not os.path.isdir("/proc") else int(proc.pid)


class CpuMeter:
    """CPU seconds of the Python driver, the JVM and the JVM's Python workers between
    :meth:`start` and :meth:`stop`.

    The JVM (driver and executors in local mode) and the Python workers it starts are
    child processes that ``getrusage`` of the driver does not see, and Spark's worker
    daemon ignores SIGCHLD, so a finished worker's time is counted nowhere. A daemon
    thread therefore reads every process of the JVM's tree from ``/proc`` each
    ``interval`` seconds and keeps each one's latest own CPU time; a worker's last
    ``interval`` before it exits is missed. :meth:`stop` returns None where ``/proc`` is
    missing (not Linux) or the JVM is not a child of this process (a remote driver).

    Examples
    --------
    >>> meter = CpuMeter(spark).start()  # doctest: +SKIP
    >>> meter.stop()  # doctest: +SKIP
    {'python_driver': 3.1, 'jvm': 25.9, 'python_workers': 2.2}
    """

    def __init__(self, spark: Any, interval: float = 0.5) -> None:
        self.pid = _jvm_pid(spark)
        self.interval = interval
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._driver = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        if self.pid is None:
            return
        stats = _proc_stats()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        stack = [self.pid]
        while stack:
            pid = stack.pop()
            if pid in stats:
                self._last[pid] = stats[pid][1]
            stack.extend(children.get(pid, []))

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def start(self) -> CpuMeter:
        """Take the baseline and start sampling."""
        self._sample()
        self._base = dict(self._last)
        self._driver = _own_cpu()
        if self.pid is not None:
            self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> dict[str, float] | None:
        """Stop sampling; ``python_driver``, ``jvm`` and ``python_workers`` seconds (user +
        system) since :meth:`start`, or None where not measurable."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self.pid is None or self.pid not in self._base:
            return None
        self._sample()
        spent = {pid: cpu - self._base.get(pid, 0.0) for pid, cpu in self._last.items()}
        return {
            "python_driver": _own_cpu() - self._driver,
            "jvm": spent.pop(self.pid, 0.0),
            "python_workers": sum(spent.values()),
        }


def _own_cpu() -> float:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime
