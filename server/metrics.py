"""Prometheus metrics of one server (a registry per app, so tests do not share state)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.store import Store

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = r = CollectorRegistry()
        self.frames_accepted = Counter(
            "uptally_frames_accepted", "Frames accepted and stored", registry=r
        )
        self.frames_rejected = Counter(
            "uptally_frames_rejected", "Frames rejected, by reason", ["reason"], registry=r
        )
        self.frame_warnings = Counter(
            "uptally_frame_warnings", "Optional fields dropped from kept frames", registry=r
        )
        self.batches = Counter(
            "uptally_batches", "Batches answered, by outcome", ["outcome"], registry=r
        )
        self.duplicates = Counter(
            "uptally_duplicate_batches", "Batches recognised as resends", registry=r
        )
        self.commit_seconds = Histogram(
            "uptally_commit_seconds",
            "Duration of one group commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ack_seconds = Histogram(
            "uptally_ack_seconds",
            "Ingest request duration until its answer, whatever the status",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.group_size = Histogram(
            "uptally_group_batches",
            "Batches committed together",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        store_size = Gauge("uptally_store_bytes", "Size of the LMDB data file", registry=r)
        store_size.set_function(lambda: _file_size(os.path.join(store.path, "data.mdb")))
        map_used = Gauge("uptally_store_map_used_ratio", "Share of the LMDB map in use", registry=r)
        map_used.set_function(store.map_used)

    def watch(self, watcher: Any, deliverer: Any) -> None:
        """Also report the evaluator's passes and the webhook deliverer's attempts."""
        self.registry.register(_WatchCollector(watcher, deliverer))

    def observe_group(self, size: int, seconds: float) -> None:
        self.group_size.observe(size)
        self.commit_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _file_size(path: str) -> float:
    try:
        return float(os.path.getsize(path))
    except OSError:
        return 0.0


class _WatchCollector(Collector):
    """The evaluator's and the deliverer's own counts, read when scraped."""

    def __init__(self, watcher: Any, deliverer: Any) -> None:
        self.watcher, self.deliverer = watcher, deliverer

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily(
            "uptally_watch_passes", "Evaluation passes over every tenant", self.watcher.passes
        )
        yield GaugeMetricFamily(
            "uptally_watch_last_pass_seconds",
            "Duration of the last evaluation pass",
            self.watcher.last_pass_s,
        )
        for name, value, text in (
            ("attempts", self.deliverer.attempts, "Webhook delivery attempts made"),
            ("delivered", self.deliverer.delivered, "Webhook deliveries answered 2xx"),
            ("failed", self.deliverer.failed, "Webhook deliveries given up after every attempt"),
        ):
            yield CounterMetricFamily(f"uptally_webhook_{name}", text, value)
