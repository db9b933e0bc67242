"""Records an autoscaling run (replicas, ready replicas, queue depth over time, and the moments that
matter) and writes reports/autoscaling.png and a JSON of the same numbers."""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import helm as helm_tools

REPORTS = helm_tools.ROOT / "reports"


@dataclass
class Sample:
    t: float
    desired: int
    ready: int
    queue: float
    sims: int


@dataclass
class Recorder:
    """Samples once a second on a background thread; events are (time, label)."""

    read: Callable[[], tuple[int, int, float, int]]   # desired replicas, ready replicas, queue depth, simulators
    t0: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    def mark(self, label: str) -> float:
        t = self.now()
        self.events.append((t, label))
        return t

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                d, r, q, s = self.read()
                self.samples.append(Sample(self.now(), d, r, q, s))
            except Exception:  # noqa: BLE001, S110 - a missed sample is a gap in the plot, not a failure
                pass
            self._stop.wait(1)

    def start(self) -> Recorder:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="autoscaling-recorder")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def first(self, pred: Callable[[Sample], bool], after: float = 0) -> float | None:
        return next((s.t for s in self.samples if s.t >= after and pred(s)), None)

    def write(self, name: str, title: str, numbers: dict[str, Any]) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        REPORTS.mkdir(exist_ok=True)
        ts = [s.t for s in self.samples]
        fig, ax = plt.subplots(figsize=(10, 5))
        ax.step(ts, [s.desired for s in self.samples], where="post", lw=3, alpha=0.5,
                label="desired replicas (Deployment spec)")
        ax.step(ts, [s.ready for s in self.samples], where="post", ls="--", label="ready replicas")
        ax.step(ts, [s.sims for s in self.samples], where="post", ls=":", label="simulators serving")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("replicas")
        ax.set_ylim(bottom=0, top=max([s.desired for s in self.samples] + [1]) + 1)
        ax2 = ax.twinx()
        ax2.plot(ts, [0 if math.isnan(s.queue) else s.queue for s in self.samples], color="tab:red", alpha=0.6,
                 label="queue depth (sum vllm:num_requests_waiting)")
        ax2.set_ylabel("waiting requests")
        top = ax.get_ylim()[1]
        for i, (t, label) in enumerate(self.events):
            ax.axvline(t, color="grey", ls=":", lw=1)
            # staggered heights so that events a second apart stay readable
            ax.annotate(label, (t, top * (0.97 - 0.18 * (i % 3))), rotation=90, fontsize=7, va="top", ha="right")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        ax.set_title(title)
        fig.tight_layout()
        png = REPORTS / f"{name}.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        (REPORTS / f"{name}.json").write_text(json.dumps({
            "numbers": numbers, "events": self.events,
            "samples": [s.__dict__ for s in self.samples]}, indent=1))
        return png
