"""Planner benchmark: plans/s and latency percentiles on generated inventories.

    python bench/planning.py [--sizes 100,1000,10000] [--sessions 2000] [--seed 1]

For each size: generate an inventory, then plan AND reserve sessions one after the other
(the plan's demands are added to an in-memory load dict, as the service does in its
database), with random CEs and cloud PEs, tiers A/AA. Then the same for protected
sessions (AAA with the cloud PE in the CE's region, so diversity is possible), and for a
full assessment (all three tiers, nothing reserved). Every figure is compared with a bare
``networkx.dijkstra_path`` weighted by latency between the same endpoints on the same
graph (no capacity, availability or diversity: the floor of what a planner can cost).

Failed plans (the network fills up, or no diverse pair exists) are timed too and counted.
The graph/landmark precomputation (``Planner`` construction) is reported separately: it
happens once per inventory.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from s2cvpn.errors import InsufficientResources  # noqa: E402
from s2cvpn.network import assessment, generator, loader, planner  # noqa: E402
from s2cvpn.network.inventory import Inventory  # noqa: E402
from s2cvpn.network.plans import ConnectionRequest  # noqa: E402

TODAY = date(2026, 11, 28)


@dataclass
class Timing:
    seconds: list[float]
    failures: int

    def line(self, label: str, baseline_p50: float) -> str:
        ordered = sorted(self.seconds)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        rate = len(ordered) / sum(ordered)
        return (
            f"  {label:<22} {rate:>9.0f}/s   p50 {p50 * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms   "
            f"x{p50 / baseline_p50:5.2f} nx   failed {self.failures}/{len(ordered)}"
        )


def _requests(inventory: Inventory, count: int, rng: random.Random, *, protected: bool) -> list[ConnectionRequest]:
    attachments = [a for a in inventory.attachments.values() if a.customers is None]
    clouds = [n for n in inventory.nodes.values() if n.role == "cloud-pe"]
    by_city: dict[str, list] = {}
    for cloud in clouds:
        by_city.setdefault(cloud.location.city, []).append(cloud)
    out = []
    for _ in range(count):
        attachment = rng.choice(attachments)
        if protected:  # a cloud PE near the CE when there is one: diversity is then possible
            cloud = rng.choice(by_city.get(attachment.location.city) or clouds)
        else:
            cloud = rng.choice(clouds)
        out.append(ConnectionRequest(
            client_id="bench",
            ce_primary=(attachment.ce_addresses[0],),
            pe_primary=(cloud.addresses[0],),
            bandwidth_mbps=rng.choice((10, 50, 100, 200)),
            sla="AAA" if protected else rng.choice(("A", "AA")),
            protected=protected,
        ))
    return out


def _time(requests: list[ConnectionRequest], call: Callable[[ConnectionRequest], object]) -> Timing:
    seconds, failures = [], 0
    clock = time.perf_counter
    for request in requests:
        start = clock()
        try:
            call(request)
        except InsufficientResources:
            failures += 1
        seconds.append(clock() - start)
    return Timing(seconds, failures)


def _baseline(inventory: Inventory, requests: list[ConnectionRequest]) -> float:
    graph = nx.Graph()
    for link in inventory.links.values():
        graph.add_edge(link.a, link.b, latency=link.latency_ms)
    ce = {a: att.access_pe for att in inventory.attachments.values() for a in att.ce_addresses}
    pe = {a: n.name for n in inventory.nodes.values() for a in n.addresses}
    seconds = []
    for request in requests:
        src, dst = ce[request.ce_primary[0]], pe[request.pe_primary[0]]
        start = time.perf_counter()
        nx.dijkstra_path(graph, src, dst, weight="latency")
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def run(size: int, sessions: int, seed: int) -> None:
    rng = random.Random(seed)
    start = time.perf_counter()
    inventory = loader.inventory_from_mapping(generator.generate_inventory(size, seed))
    built = time.perf_counter()
    planner.planner_for(inventory)
    ready = time.perf_counter()
    print(f"{size} nodes: {len(inventory.links)} links, {len(inventory.attachments)} attachments; "
          f"generate+load {built - start:.2f} s, planner precompute {ready - built:.2f} s")
    plain = _requests(inventory, sessions, rng, protected=False)
    protected = _requests(inventory, max(sessions // 4, 50), rng, protected=True)
    assessed = _requests(inventory, max(sessions // 10, 50), rng, protected=False)
    baseline = _baseline(inventory, plain)
    load: Counter[str] = Counter()

    def plan_and_reserve(request: ConnectionRequest) -> None:
        plan = planner.plan_connection(inventory, request, load, TODAY)
        load.update(plan.demands)  # reserve, as the service would

    print(f"  {'networkx dijkstra_path':<22} {1 / baseline:>9.0f}/s   p50 {baseline * 1e3:7.3f} ms")
    print(_time(plain, plan_and_reserve).line("plan+reserve", baseline))
    print(_time(protected, plan_and_reserve).line("protected plan+reserve", baseline))
    timing = _time(assessed, lambda r: assessment.assess_connection(inventory, r, load, TODAY, None))
    print(timing.line("assessment (3 tiers)", baseline))
    busiest = max((load[r] / inventory.capacity_of(r, TODAY), r) for r in load)
    print(f"  reserved on {len(load)} resources; busiest {busiest[1]} at {busiest[0]:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated node counts")
    parser.add_argument("--sessions", type=int, default=2000, help="plain sessions per size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        run(size, args.sessions, args.seed)


if __name__ == "__main__":
    main()
