"""A small agent runtime on the rolloutops client: for each request it asks where it goes (in-process,
from the routing snapshot), lets the acting agent version or a person decide, runs the shadow
candidate beside the incumbent when the route says so, escalates low-confidence decisions to people,
and reports every decision. The agents and people are simulated; the integration is the real one.

    pip install ./client
    python examples/support_runtime.py --url http://127.0.0.1:8000 --token rlo_… --all-agents --rate 0.3

The token needs the scopes route:read,events:write,escalations:write and an owner with the operator
role. `--all-agents` sends traffic to every agent of the routing snapshot (re-read every minute), which
keeps a demo's live stages fed: a live stage that hears nothing from its candidate for 10 minutes is
paused as inconclusive. `--duration 0` (the default) runs until Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rolloutops_client import Client, RolloutOpsError

log = logging.getLogger("support_runtime")

LABELS = ("approve", "reject", "request_info")
# The demo's agents and the segments their requests fall in; any other agent gets GENERIC. A segment
# with an accuracy below the rest is where a candidate disagrees with people systematically.
SEGMENTS = {
    "claims-triage": {"motor": 0.96, "home": 0.96, "travel": 0.96},
    "refund-assistant": {"card": 0.97, "sepa": 0.96, "wallet": 0.96},
    "kyc-document-checker": {"passport-eu": 0.96, "id-card-eu": 0.96, "driving-licence": 0.95,
                             "passport-non-eu": 0.62},
    "fraud-alert-summarizer": {"card-fraud": 0.96, "account-takeover": 0.95},
    "support-router": {"billing": 0.97, "technical": 0.96, "complaints": 0.96},
}
GENERIC = {"standard": 0.96, "priority": 0.96}
TOOLS = ("crm.lookup_customer", "policy.evaluate", "ledger.search")
# Rates well inside the default guardrails (error 5 %, escalation 20 %, disagreement 10 %), with
# candidates a little better than what they are compared with (the version in production, or people
# missing their deadline), so simulated traffic does not roll a healthy rollout back; raise
# --candidate-error-rate to watch the guardrails roll one back.
INCUMBENT_ERROR_RATE = 0.012
PEOPLE_TIMEOUT_RATE = 0.012
CANDIDATE_ERROR_RATE = 0.008


@dataclass(frozen=True)
class Request:
    agent: str
    key: str
    segment: str
    truth: str  # what a careful person decides
    text: str


class Runtime:
    def __init__(self, client: Client, *, review_share: float, escalate_below: float, work_ms: float,
                 seed: int | None, candidate_error_rate: float = CANDIDATE_ERROR_RATE):
        self.client = client
        self.candidate_error_rate = candidate_error_rate
        self.review_share = review_share
        self.escalate_below = escalate_below
        self.work_s = work_ms / 1000
        self.run = f"{seed:04x}" if seed is not None else f"{random.randrange(16 ** 6):06x}"
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._serial = 0

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def request(self, agent: str) -> Request:
        with self._lock:
            self._serial += 1
            serial = self._serial
            segment = self.rng.choice(sorted(SEGMENTS.get(agent, GENERIC)))
            truth = self.rng.choices(LABELS, weights=(5, 3, 2))[0]
        return Request(agent, f"rt-{self.run}-{agent[:12]}-{serial}", segment, truth,
                       f"request {serial} ({segment}): customer asks for a decision")

    def decide(self, req: Request, version: str) -> tuple[str, float]:
        """A version's decision: right with its segment's accuracy (a candidate and an incumbent draw
        independently), confident when right, less so when wrong."""
        rng = random.Random(f"{req.key}/{version}")
        accuracy = SEGMENTS.get(req.agent, GENERIC)[req.segment]
        if rng.random() < accuracy:
            return req.truth, round(rng.uniform(0.7, 0.99), 2)
        return rng.choice([label for label in LABELS if label != req.truth]), round(rng.uniform(0.35, 0.8), 2)

    def handle(self, agent: str) -> None:
        req = self.request(agent)
        input_hash = hashlib.sha256(req.text.encode()).hexdigest()[:32]
        try:
            with self.client.decision(agent, req.key, segment=req.segment, input_hash=input_hash) as d:
                if d.route.handler == "agent":
                    self._agent_acts(d, req)
                else:
                    time.sleep(self.work_s * 3)  # a person reads the request
                    d.label = req.truth
                    d.outcome = "timeout" if self.rng.random() < PEOPLE_TIMEOUT_RATE else "ok"
                    self.count("decided by people")
                if d.route.shadow and d.route.shadow_version:
                    # The candidate decides the same request beside the incumbent; its answer is not used.
                    started = time.perf_counter()
                    label, confidence = self.decide(req, d.route.shadow_version)
                    d.record_shadow(label=label, confidence=confidence,
                                    latency_ms=(time.perf_counter() - started) * 1000 + self.work_s * 1000)
                    self.count("shadow decisions")
        except RuntimeError as exc:
            # decision() recorded it as outcome "error"; a person takes the request over.
            log.info("%s: the agent failed (%s)", req.key, exc)
            self.count("agent errors")
            return
        if d.route.handler == "agent" and self.rng.random() < self.review_share:
            # People review a sample of what the agent decided: the human side of live pairs.
            self.client.record(agent=agent, request_key=req.key, kind="human", label=req.truth, segment=req.segment)
            self.count("reviewed by people")

    def is_candidate(self, route, agent: str) -> bool:
        """The version acting is the open rollout's candidate (not the version in production)."""
        snapshot = self.client.snapshot
        entry = snapshot.entry(agent) if snapshot else None
        rollout = (entry or {}).get("rollout") or {}
        return route.rollout is not None and route.version == rollout.get("candidate")

    def _agent_acts(self, d, req: Request) -> None:
        for tool in self.rng.sample(TOOLS, 2):
            started = time.perf_counter()
            time.sleep(self.work_s * self.rng.uniform(0.5, 1.5))
            d.step(tool=tool, arguments={"request": req.key}, result={"ok": True},
                   duration_ms=round((time.perf_counter() - started) * 1000, 1))
        if self.rng.random() < (self.candidate_error_rate if self.is_candidate(d.route, req.agent)
                                else INCUMBENT_ERROR_RATE):
            raise RuntimeError("model endpoint returned 503")
        d.label, d.confidence = self.decide(req, d.route.version)
        self.count(f"decided by {req.agent} {d.route.version}")
        if d.confidence < self.escalate_below:
            try:
                d.escalate("low_confidence", priority="P3",
                           context={"input": req.text, "partial_output": f"leaning {d.label}"})
                self.count("escalations")
            except RolloutOpsError as exc:
                log.warning("could not escalate %s: %s", req.key, exc)
                self.count("escalations failed")


def agents_to_serve(client: Client, args) -> list[str]:
    if not args.all_agents:
        return args.agent
    snapshot = client.snapshot
    return sorted(snapshot.plans) if snapshot else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("ROLLOUTOPS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("ROLLOUTOPS_TOKEN"),
                        help="route:read,events:write,escalations:write (default: $ROLLOUTOPS_TOKEN)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", action="append", help="an agent's slug (repeat for several)")
    who.add_argument("--all-agents", action="store_true", help="every agent of the routing snapshot")
    parser.add_argument("--rate", type=float, default=0.5, help="requests per second, per agent (default 0.5)")
    parser.add_argument("--duration", type=float, default=0, help="seconds to run; 0: until interrupted")
    parser.add_argument("--review-share", type=float, default=0.1,
                        help="share of the agents' decisions people also decide (default 0.1)")
    parser.add_argument("--escalate-below", type=float, default=0.5,
                        help="an agent decision less confident than this goes to people (default 0.5)")
    parser.add_argument("--work-ms", type=float, default=150, help="simulated time of one tool call")
    parser.add_argument("--candidate-error-rate", type=float, default=CANDIDATE_ERROR_RATE,
                        help=f"how often a candidate version fails (default {CANDIDATE_ERROR_RATE}; the version "
                             f"in production {INCUMBENT_ERROR_RATE}): raise it to see an automatic rollback")
    parser.add_argument("--seed", type=int, default=None, help="repeatable requests (default: random)")
    parser.add_argument("--report-every", type=float, default=60, help="seconds between progress lines")
    parser.add_argument("--startup-timeout", type=float, default=60,
                        help="seconds to wait for the server's first routing snapshot (it may still be starting)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token or $ROLLOUTOPS_TOKEN is required")
    if args.rate <= 0:
        parser.error("--rate must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    client = Client(args.url, args.token, flush_at_exit_s=None)
    if not client.wait_ready(args.startup_timeout):
        log.error("no routing snapshot from %s: %s", args.url, client.stats().last_refresh_error)
        client.close(1)
        return 1
    runtime = Runtime(client, review_share=args.review_share, escalate_below=args.escalate_below,
                      work_ms=args.work_ms, seed=args.seed, candidate_error_rate=args.candidate_error_rate)
    agents = agents_to_serve(client, args)
    log.info("serving %s at %.2f requests/s each (run %s)", ", ".join(agents) or "no agent yet", args.rate, runtime.run)
    pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="request")
    in_flight = threading.Semaphore(256)  # beyond this the runtime sheds load rather than queue forever
    started = time.monotonic()
    due = {agent: started for agent in agents}
    next_report = next_agents = started
    while not stop.is_set() and (not args.duration or time.monotonic() - started < args.duration):
        now = time.monotonic()
        if args.all_agents and now >= next_agents:
            due = {agent: due.get(agent, now) for agent in agents_to_serve(client, args)}
            next_agents = now + 60
        for agent, at in due.items():
            if at <= now:
                due[agent] = at + runtime.rng.expovariate(args.rate)  # Poisson arrivals
                if in_flight.acquire(blocking=False):
                    pool.submit(_serve, runtime, agent, in_flight)
                else:
                    runtime.count("shed")
        if now >= next_report and args.report_every:
            _report(runtime, started)
            next_report = now + args.report_every
        stop.wait(min([0.2, *[max(0.0, at - now) for at in due.values()]]))
    pool.shutdown(wait=True)
    client.flush(30)
    summary = _report(runtime, started)
    client.close(10)
    print("summary: " + json.dumps(summary, sort_keys=True))
    return 0 if not summary["telemetry"]["rejected"] and not summary["telemetry"]["failed"] else 1


def _serve(runtime: Runtime, agent: str, in_flight: threading.Semaphore) -> None:
    try:
        runtime.handle(agent)
    except Exception:  # noqa: BLE001 - one request's bug must not stop the runtime
        log.exception("request of %s failed", agent)
        runtime.count("bugs")
    finally:
        in_flight.release()


def _report(runtime: Runtime, started: float) -> dict:
    stats = runtime.client.stats().telemetry
    with runtime._lock:
        counts = dict(runtime.counts)
    telemetry = {"accepted": stats.accepted, "duplicates": stats.duplicates, "rejected": stats.rejected,
                 "failed": stats.failed, "dropped": stats.dropped, "queued": stats.queued + stats.in_flight}
    log.info("%.0f s: %s | events %s", time.monotonic() - started,
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no requests yet",
             ", ".join(f"{k} {v}" for k, v in telemetry.items()))
    return {"run": runtime.run, "counts": counts, "telemetry": telemetry}


if __name__ == "__main__":
    raise SystemExit(main())
