"""One agent through two consecutive version rollouts, through the HTTP API alone, printing where
10,000 request keys go at every step: 1.0.0 takes over from people; then 2.0.0 rolls out against
1.0.0 in production, is rolled back, rolls out again, completes, and production is reverted to 1.0.0.

    python examples/two_versions.py --url http://127.0.0.1:8000 --operator-token rlo_… --manager-token rlo_…

Both tokens have the scope `user`: the operator's registers the agent, records evaluations, starts
rollouts, reports decisions, requests promotions, rolls back and reverts; the manager's approves (four
eyes: never the requester). Routing is read with `GET /api/v1/routing` and computed for each key with
the client library's bucket function, and spot-checked against `GET /api/v1/route`.

Needs the server's Celery worker and beat (`manage.py demo` runs them): the worker folds reported
decisions into the figures the gates read, and the guardrail watch (beat, every 30 s, and seconds
after each fold) completes a rollout once its last stage has held — this script polls
`GET /api/v1/rollouts/{id}` until it has. The plan is compact (no stabilization time, small sample
minimums) so the whole run takes a minute or two.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections import Counter
from datetime import datetime, timezone

import httpx
from rolloutops_client.routing import compile_snapshot

KEYS = [f"req-{i}" for i in range(10_000)]
LABELS = ("approve", "reject", "request_info")
LIVE = [("canary", 5), ("expand-10", 10), ("expand-25", 25), ("expand-50", 50), ("full", 100)]
PLAN = [{"name": "staging", "mode": "off"},
        {"name": "shadow", "mode": "shadow", "min_samples": 30, "agreement_bar": 0.8}] + [
    {"name": name, "mode": "live", "traffic_percent": share, "min_samples": 20} for name, share in LIVE]
SHADOW_REQUESTS = 40  # per shadow stage; people decide each one, and the candidate one of them differently
LIVE_SAMPLES = 25     # candidate decisions per live stage


class Failed(Exception):
    pass


class Api:
    def __init__(self, url: str, token: str):
        self.http = httpx.Client(base_url=url.rstrip("/") + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, *, ok=(200, 201), **kwargs):
        response = self.http.request(method, path, **kwargs)
        if response.status_code not in ok:
            try:
                detail = response.json()
            except ValueError:
                detail = response.text[:300]
            raise Failed(f"{method} /api/v1{path} answered {response.status_code}: {detail}")
        return response.json() if response.content else None

    def get(self, path: str, **params):
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict, *, ok=(200, 201)):
        return self.call("POST", path, json=body, ok=ok)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Distribution:
    """The table of the run: who acts on KEYS at each step, and the server's own answer for a sample."""

    def __init__(self, api: Api, slug: str, spot_checks: int):
        self.api, self.slug, self.spot_checks = api, slug, spot_checks
        self.rows: list[tuple] = []
        self.versions: list[str] = []

    def routes(self) -> dict:
        plan = compile_snapshot(self.api.get("/routing")).plans[self.slug]
        return {key: plan.route(key) for key in KEYS}

    def step(self, label: str, rollout: dict | None) -> None:
        routes = self.routes()
        acting = Counter(r.version or "humans" for r in routes.values())
        shadow = Counter(r.shadow_version for r in routes.values() if r.shadow)
        for version in [v for v in acting if v != "humans"] + list(shadow):
            if version not in self.versions:
                self.versions.append(version)
        agreed, checked = self._spot_check(routes)
        state = (rollout or {}).get("state", "")
        stage = (rollout or {}).get("stage", "") if state in ("active", "paused") else ""
        row = (label, f"#{rollout['id']}" if rollout else "", stage, state, acting, shadow, f"{agreed}/{checked}")
        self.rows.append(row)
        print(f"  {label}: " + ", ".join(f"{n:,} to {who}" for who, n in acting.most_common())
              + "".join(f", {n:,} with {v} in shadow" for v, n in shadow.items()) + f"; /route agrees {agreed}/{checked}")

    def _spot_check(self, routes: dict) -> tuple[int, int]:
        """Ask the server for a sample of keys, from every group of answers."""
        groups: dict[tuple, list[str]] = {}
        for key, r in routes.items():
            groups.setdefault((r.handler, r.version, r.shadow_version), []).append(key)
        per_group = max(1, self.spot_checks // len(groups))
        sample = [key for keys in groups.values() for key in keys[:: max(1, len(keys) // per_group)][:per_group]]
        agreed = 0
        for key in sample:
            server = self.api.get("/route", agent=self.slug, key=key)
            local = routes[key]
            agreed += all(server[f] == getattr(local, f) for f in ("handler", "version", "shadow", "shadow_version",
                                                                     "rollout", "stage", "bucket"))
        return agreed, len(sample)

    def as_json(self) -> list[dict]:
        return [{"step": label, "rollout": rollout, "stage": stage, "state": state, "acting": dict(acting),
                 "shadow": dict(shadow), "route_check": check}
                for label, rollout, stage, state, acting, shadow, check in self.rows]

    def table(self) -> str:
        columns = ["humans", *self.versions]
        head = f"{'step':<30} {'rollout':<8} {'stage':<10} {'state':<12}" + "".join(f"{c:>8}" for c in columns) \
            + f"  {'in shadow':<18} {'/route':>7}"
        lines = [head, "-" * len(head)]
        for label, rollout, stage, state, acting, shadow, check in self.rows:
            in_shadow = ", ".join(f"{v} ×{n:,}" for v, n in shadow.items()) or "—"
            lines.append(f"{label:<30} {rollout:<8} {stage:<10} {state:<12}"
                         + "".join(f"{acting.get(c, 0):>8,}" for c in columns) + f"  {in_shadow:<18} {check:>7}")
        return "\n".join(lines)


class Story:
    def __init__(self, op: Api, manager: Api, slug: str, table: Distribution, wait_s: float):
        self.op, self.manager, self.slug, self.table, self.wait_s = op, manager, slug, table, wait_s

    def say(self, text: str) -> None:
        print(f"· {text}", flush=True)

    def wait(self, what: str, ready) -> dict:
        deadline = time.monotonic() + self.wait_s
        told = False
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                raise Failed(f"gave up after {self.wait_s:.0f} s waiting for {what}")
            if not told:
                self.say(f"waiting for {what}")
                told = True
            time.sleep(0.5)

    def rollout(self, rollout_id: int) -> dict:
        return self.op.get(f"/rollouts/{rollout_id}")

    # --- a version's readiness -------------------------------------------------------------

    def add_version(self, version: str) -> None:
        self.op.post(f"/agents/{self.slug}/versions", {"version": version, "notes": f"{self.slug} {version}",
                                                       "sla": {"p95_latency_ms": 2000, "max_error_rate": 0.02}})
        items = self.op.get("/checklist")
        self.op.post(f"/agents/{self.slug}/versions/{version}/evaluations", {
            "results": [{"item": i["key"], "status": "pass", "evidence": f"https://wiki.example/{version}/{i['key']}"}
                        for i in items], "notes": "passing evaluation recorded by examples/two_versions.py"})
        self.say(f"{version} added, every checklist item evaluated as passing")

    def soak(self, version: str) -> None:
        """Staging telemetry for the automatic readiness checks: latency, errors, traces, identical
        inputs getting identical labels, and escalations that carry their context."""
        events = [{"agent": self.slug, "version": version, "request_key": f"soak-{version}-{i}", "kind": "agent",
                   "label": LABELS[(i % 30) % 3], "latency_ms": 200 + i % 50, "input_hash": f"{version}-in-{i % 30}",
                   "occurred_at": now(), "trace": {"steps": [{"tool": "crm.lookup", "duration_ms": 40}]}}
                  for i in range(120)]
        stored = self.op.post("/events", {"events": events})
        if stored["errors"]:
            raise Failed(f"soak events refused: {stored['errors'][:3]}")
        for i in range(10):
            self.op.post("/escalations", {
                "agent": self.slug, "version": version, "request_key": f"soak-esc-{version}-{i}",
                "reason": "low_confidence", "priority": "P4",
                "context": {"input": f"soak request {i}", "attempts": [{"tool": "crm.lookup", "result": "found"}]}})
        readiness = self.op.get(f"/agents/{self.slug}/versions/{version}/readiness")
        if not readiness["ready"]:
            raise Failed(f"{version} is not ready: {readiness['failing']}")
        self.say(f"{version} soaked in staging (120 decisions, 10 escalations with context): ready")

    # --- traffic as routing splits it -------------------------------------------------------

    def report(self, rollout: dict) -> int:
        """Decisions of the current stage, reported through POST /events as routing splits the
        requests. Returns how many the candidate decided (or, in shadow, how many pairs with people)."""
        plan = compile_snapshot(self.op.get("/routing")).plans[self.slug]
        candidate, stage, rid = rollout["version"], rollout["stage"], rollout["id"]
        events = []

        def decided(kind, key, label, version=None):
            item = {"agent": self.slug, "request_key": key, "kind": kind, "label": label, "occurred_at": now()}
            if kind == "agent":
                item.update(latency_ms=300, trace={"steps": [{"tool": "crm.lookup", "duration_ms": 40}]})
                if version:
                    item["version"] = version
            events.append(item)

        if rollout["stage"] == "shadow":
            for i in range(SHADOW_REQUESTS):
                key, label = f"{self.slug}-r{rid}-shadow-{i}", LABELS[i % 3]
                route = plan.route(key)
                if route.version:  # the incumbent version acts; people review each request too
                    decided("agent", key, label, route.version)
                decided("human", key, label)
                decided("agent", key, label if i else LABELS[1], route.shadow_version)  # the candidate, beside it
            count = SHADOW_REQUESTS
        else:
            count = i = 0
            while count < LIVE_SAMPLES:
                key, label = f"{self.slug}-r{rid}-{stage}-{i}", LABELS[i % 3]
                i += 1
                route = plan.route(key)
                # No version: the server attributes each decision to the version routing gave its key.
                if route.version == candidate:
                    decided("agent", key, label)
                    if count % 5 == 0:
                        decided("human", key, label)  # people review a share of the candidate's decisions
                    count += 1
                elif route.handler == "agent":
                    decided("agent", key, label)
                else:
                    decided("human", key, label)
        stored = self.op.post("/events", {"events": events})
        if stored["errors"]:
            raise Failed(f"events refused: {stored['errors'][:3]}")
        return count

    def folded(self, rollout: dict, expected: int) -> None:
        rid, stage = rollout["id"], rollout["stage"]
        if stage == "shadow":
            self.wait(f"the worker to fold {expected} pairs into the shadow figures",
                      lambda: (d := self.op.get(f"/rollouts/{rid}/discrepancy", stage=stage))["pairs"] >= expected
                      and not d["pending_events"])
        else:
            self.wait(f"the worker to fold {expected} decisions into the {stage} figures",
                      lambda: self.op.get(f"/rollouts/{rid}/guardrails")["samples"] >= expected)

    # --- moving a rollout -------------------------------------------------------------------

    def promote(self, rollout: dict) -> dict:
        try:
            request = self.op.post(f"/rollouts/{rollout['id']}/promotions", {"reason": "figures reached the plan's bar"})
        except Failed as exc:
            raise Failed(f"promotion from {rollout['stage']} refused: {exc}") from None
        self.manager.post(f"/promotions/{request['id']}/approve", {"comment": "approved (second pair of eyes)"})
        moved = self.rollout(rollout["id"])
        self.say(f"promotion #{request['id']} {request['from_stage']} → {request['to_stage']} approved by the manager")
        return moved

    def start(self, version: str) -> dict:
        rollout = self.op.post("/rollouts", {"agent": self.slug, "version": version, "plan": PLAN,
                                             "reason": "examples/two_versions.py"})
        self.say(f"rollout #{rollout['id']} of {version} started against "
                 f"{rollout['incumbent'] or 'people'}")
        return rollout

    def drive(self, rollout: dict, label: str, *, stop_at: str | None = None) -> dict:
        """Walk the plan from staging; stop in `stop_at`, or go on until the rollout completes."""
        self.table.step(f"{label} staging", rollout)
        while True:
            if rollout["stage"] != "staging":
                expected = self.report(rollout)
                self.folded(rollout, expected)
            if rollout["stage"] == stop_at:
                return rollout
            if rollout["stage"] == PLAN[-1]["name"]:
                break
            rollout = self.promote(rollout)
            share = f" {rollout['traffic_percent']:g} %" if rollout["traffic_percent"] else ""
            self.table.step(f"{label} {rollout['stage']}{share}", rollout)
        rollout = self.wait("the guardrail watch to complete the rollout (Celery beat, every 30 s)",
                            lambda: (r := self.rollout(rollout["id"]))["state"] != "active" and r)
        if rollout["state"] != "completed":
            raise Failed(f"rollout #{rollout['id']} ended {rollout['state']}: {rollout['end_reason']}")
        self.say(f"rollout #{rollout['id']} completed: {rollout['version']} is in production")
        self.table.step(f"{label} completed", rollout)
        return rollout


def run(op: Api, manager: Api, slug: str, *, spot_checks: int, wait_s: float) -> Distribution:
    table = Distribution(op, slug, spot_checks)
    story = Story(op, manager, slug, table, wait_s)
    op.post("/agents", {"slug": slug, "name": "Two versions", "owner_team": "examples",
                        "description": "Driven through two version rollouts by examples/two_versions.py"})
    story.say(f"agent {slug} registered: people handle its requests")

    story.add_version("1.0.0")
    first = story.start("1.0.0")
    story.soak("1.0.0")
    story.drive(first, "1.0.0")

    story.add_version("2.0.0")
    attempt = story.start("2.0.0")
    story.soak("2.0.0")
    attempt = story.drive(attempt, "2.0.0", stop_at="canary")
    op.post(f"/rollouts/{attempt['id']}/rollback", {"reason": "canary: customers report wrong refund amounts"})
    story.say(f"rollout #{attempt['id']} rolled back by hand: 1.0.0 takes every request again")
    table.step("2.0.0 rolled back", story.rollout(attempt["id"]))

    again = story.start("2.0.0")
    story.drive(again, "2.0.0 (retry)")

    reverted = op.post(f"/agents/{slug}/revert", {"reason": "2.0.0 mislabels a rare claim type; back to 1.0.0"})
    story.say(f"production reverted from {reverted['reverted_from']} to {reverted['version']}")
    table.step(f"revert to {reverted['version']}", story.rollout(again["id"]))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("ROLLOUTOPS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--operator-token", required=True, help="a `user` token of an operator")
    parser.add_argument("--manager-token", required=True, help="a `user` token of a manager (not the operator)")
    parser.add_argument("--agent", default=None, help="the slug to register (default: two-versions-<random>)")
    parser.add_argument("--spot-checks", type=int, default=20, help="keys asked of GET /route at each step")
    parser.add_argument("--wait-s", type=float, default=120, help="how long to wait for the worker at each step")
    parser.add_argument("--json", action="store_true", help="end with the table as one JSON line")
    args = parser.parse_args(argv)
    slug = args.agent or f"two-versions-{secrets.token_hex(3)}"
    try:
        table = run(Api(args.url, args.operator_token), Api(args.url, args.manager_token), slug,
                    spot_checks=args.spot_checks, wait_s=args.wait_s)
    except (Failed, httpx.HTTPError) as exc:
        print(f"two_versions: {exc}", file=sys.stderr)
        return 1
    print(f"\nWhere {len(KEYS):,} request keys of {slug} go at each step (GET /api/v1/routing + the client's "
          "bucket function; the last column: keys spot-checked with GET /api/v1/route that agree)\n")
    print(table.table())
    if args.json:
        print(json.dumps({"agent": slug, "steps": table.as_json()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
