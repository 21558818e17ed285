"""The inventory as an indexed graph, and the one path search the planner needs.

Why hand-written instead of networkx: the planner runs on every create, modify and
assessment, with a capacity filter that depends on the live load and a heuristic that
depends on the target. networkx would need a filtered graph view (or a weight callback)
per call, which costs more than the search itself. Here the graph is built once per
inventory (``network_graph``) into flat lists indexed by integers, and ``search`` is an
A* over them with ``heapq``:

* cost = latency in integer microseconds (exact ties), times ``TIE_SCALE``, plus the sum of
  the links' current utilisation in permille: the lowest-latency path wins and, among
  equal latencies, the least loaded one;
* links whose free capacity (capacity on the day minus load) is below the bandwidth,
  and banned links (the primary's, for a diverse secondary), are skipped;
* cloud PEs are never transit, only endpoints;
* the heuristic is a lower bound on the remaining latency, the larger of two bounds:
  the straight-line (chord) distance to the target times the smallest latency-per-km of
  any link, and the ALT landmark bound ``|d(L, t) - d(L, v)|`` over a few landmarks whose
  latency distances to every node are computed once (removing links for capacity or
  diversity only lengthens paths, so both stay lower bounds). Both are admissible and
  consistent, so the result is the exact optimum while exploring only the part of the
  network "towards" the target. That keeps a 10,000-node search close to the size of the
  path rather than of the network.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from s2cvpn.network.inventory import Inventory, Location

TIE_SCALE = 1 << 30  # cost units per microsecond; the permille tie-break sum stays below it
AVAIL_COST_SCALE = 1e9  # availability cost: -ln(availability) in nano-nepers
EARTH_RADIUS_KM = 6371.0
_MAX_DAYS_CACHED = 16
LANDMARKS = 16


@dataclass(frozen=True)
class Route:
    """A path found by ``search``: node and link indexes, access side first."""

    nodes: tuple[int, ...]
    edges: tuple[int, ...]


@dataclass
class NetworkGraph:
    """Flat, integer-indexed view of an inventory, built once (see ``network_graph``)."""

    names: list[str]
    index: dict[str, int]
    adjacency: list[list[tuple[int, int]]]  # node -> [(neighbour, edge)]
    link_ids: list[str]
    latency_us: list[int]
    latency_ms: list[float]
    availability: list[float]
    avail_cost: list[int]
    srlgs: list[frozenset[str]]
    srlg_edges: dict[str, list[int]]
    transit: list[bool]
    xyz_km: list[tuple[float, float, float]]
    us_per_km: float
    inventory: Inventory
    upgrade_dates: tuple[date, ...]
    landmark_us: list[tuple[int, ...]]  # per node: latency (us) from each landmark, -1 = unreachable
    landmark_avail: list[tuple[int, ...]]  # per node: availability cost from each landmark
    _capacities: dict[date, list[int]] = field(default_factory=dict)

    def capacities(self, day: date) -> list[int]:
        """Capacity (Mbps) of every link on ``day``, computed once per distinct day."""
        caps = self._capacities.get(day)
        if caps is None:
            links = self.inventory.links
            caps = [links[lid].capacity_on(day) for lid in self.link_ids]
            if len(self._capacities) >= _MAX_DAYS_CACHED:
                self._capacities.clear()
            self._capacities[day] = caps
        return caps

    def conflicting_edges(self, edges: Collection[int]) -> set[int]:
        """``edges`` plus every link sharing an SRLG with one of them."""
        out = set(edges)
        for e in edges:
            for group in self.srlgs[e]:
                out.update(self.srlg_edges[group])
        return out

    def search(
        self,
        src: int,
        dst: int,
        *,
        bandwidth_mbps: int,
        load: Mapping[str, int],
        capacities: Sequence[int],
        banned: Collection[int] = (),
        weights: Sequence[int] | None = None,
        mix: tuple[float, float] = (1.0, 0.0),
    ) -> Route | None:
        """Cheapest route from ``src`` to ``dst`` over links with enough free capacity.

        ``weights`` (per link, integer) replaces the latency cost. It must be at least
        ``mix[0] * latency_us + mix[1] * avail_cost`` on every link, so that the heuristic
        (the same mix of the two lower bounds) stays exact: ``(1, 0)`` for latency,
        ``(0, 1)`` for availability cost, ``(1, lambda)`` for the planner's LARAC weights.
        """
        cost_of = self.latency_us if weights is None else weights
        adjacency, link_ids, transit = self.adjacency, self.link_ids, self.transit
        heuristic = self._heuristic(dst, mix)
        best: dict[int, int] = {src: 0}
        parent: dict[int, tuple[int, int]] = {}
        done: set[int] = set()
        heap: list[tuple[int, int, int]] = [(0, 0, src)]
        push, pop = heapq.heappush, heapq.heappop
        load_get = load.get
        while heap:
            _, g, u = pop(heap)
            if u in done:
                continue
            if u == dst:
                return self._route(src, dst, parent)
            done.add(u)
            if u != src and not transit[u]:
                continue
            for v, e in adjacency[u]:
                if v in done or e in banned:
                    continue
                capacity = capacities[e]
                used = load_get(link_ids[e], 0)
                if capacity - used < bandwidth_mbps:
                    continue
                cost = g + cost_of[e] * TIE_SCALE + (used * 1000 // capacity)
                if cost < best.get(v, cost + 1):
                    best[v] = cost
                    parent[v] = (u, e)
                    push(heap, (cost + (heuristic(v) if heuristic else 0), cost, v))
        return None

    def _heuristic(self, dst: int, mix: tuple[float, float]) -> Callable[[int], int]:
        """Lower bound on the remaining cost to ``dst``, memoised per node for this search."""
        xt, yt, zt = self.xyz_km[dst]
        xyz, us_per_km = self.xyz_km, self.us_per_km
        lat_factor, avail_factor = mix
        landmark_us, landmark_avail = self.landmark_us, self.landmark_avail
        lat_target, avail_target = landmark_us[dst], landmark_avail[dst]
        memo: dict[int, int] = {}

        def alt(mine: tuple[int, ...], target: tuple[int, ...]) -> int:
            best = 0
            for dv, dt in zip(mine, target):
                if dv >= 0 and dt >= 0 and abs(dv - dt) > best:
                    best = abs(dv - dt)
            return best

        def bound(v: int) -> int:
            h = memo.get(v)
            if h is None:
                total = 0.0
                if lat_factor:
                    x, y, z = xyz[v]
                    chord = int(us_per_km * math.sqrt((x - xt) ** 2 + (y - yt) ** 2 + (z - zt) ** 2))
                    total += lat_factor * max(chord, alt(landmark_us[v], lat_target))
                if avail_factor:
                    total += avail_factor * alt(landmark_avail[v], avail_target)
                h = memo[v] = int(total) * TIE_SCALE
            return h

        return bound

    @staticmethod
    def _route(src: int, dst: int, parent: dict[int, tuple[int, int]]) -> Route:
        nodes, edges = [dst], []
        v = dst
        while v != src:
            u, e = parent[v]
            nodes.append(u)
            edges.append(e)
            v = u
        nodes.reverse()
        edges.reverse()
        return Route(nodes=tuple(nodes), edges=tuple(edges))

    def route_latency_ms(self, route: Route) -> float:
        return round(sum(self.latency_ms[e] for e in route.edges), 6)

    def route_availability(self, route: Route) -> float:
        availability = 1.0
        for e in route.edges:
            availability *= self.availability[e]
        return availability


def network_graph(inventory: Inventory) -> NetworkGraph:
    """The inventory's graph, built on first use and kept with the inventory."""
    return inventory.cached("graph.network_graph", _build)


def _xyz_km(location: Location) -> tuple[float, float, float]:
    lat, lon = math.radians(location.latitude), math.radians(location.longitude)
    return (
        EARTH_RADIUS_KM * math.cos(lat) * math.cos(lon),
        EARTH_RADIUS_KM * math.cos(lat) * math.sin(lon),
        EARTH_RADIUS_KM * math.sin(lat),
    )


def _build(inventory: Inventory) -> NetworkGraph:
    names = list(inventory.nodes)
    index = {name: i for i, name in enumerate(names)}
    adjacency: list[list[tuple[int, int]]] = [[] for _ in names]
    xyz = [_xyz_km(inventory.nodes[name].location) for name in names]
    link_ids, latency_us, latency_ms, availability, avail_cost, srlgs = [], [], [], [], [], []
    srlg_edges: dict[str, list[int]] = {}
    us_per_km = math.inf
    for e, link in enumerate(inventory.links.values()):
        a, b = index[link.a], index[link.b]
        adjacency[a].append((b, e))
        adjacency[b].append((a, e))
        link_ids.append(link.id)
        latency_us.append(round(link.latency_ms * 1000))
        latency_ms.append(link.latency_ms)
        availability.append(link.availability)
        avail_cost.append(round(-math.log(link.availability) * AVAIL_COST_SCALE))
        srlgs.append(link.srlgs)
        for group in link.srlgs:
            srlg_edges.setdefault(group, []).append(e)
        chord_km = math.dist(xyz[a], xyz[b])
        if chord_km > 1e-6:
            us_per_km = min(us_per_km, latency_us[-1] / chord_km)
    dates = sorted({u.available_from for link in inventory.links.values() for u in link.upgrades})
    return NetworkGraph(
        names=names,
        index=index,
        adjacency=adjacency,
        link_ids=link_ids,
        latency_us=latency_us,
        latency_ms=latency_ms,
        availability=availability,
        avail_cost=avail_cost,
        srlgs=srlgs,
        srlg_edges=srlg_edges,
        transit=[inventory.nodes[name].role != "cloud-pe" for name in names],
        xyz_km=xyz,
        # Shrunk a hair so float error can never make the bound exceed a real latency.
        us_per_km=0.0 if math.isinf(us_per_km) else us_per_km * (1 - 1e-9),
        inventory=inventory,
        upgrade_dates=tuple(dates),
        landmark_us=_landmarks(adjacency, latency_us),
        landmark_avail=_landmarks(adjacency, avail_cost),
    )


def _landmarks(adjacency: list[list[tuple[int, int]]], latency_us: list[int]) -> list[tuple[int, ...]]:
    """Cost (latency, or availability cost) from ``LANDMARKS`` far-apart nodes to every node (farthest-point choice:
    each new landmark is the node farthest from those already chosen), for the ALT bound.
    Computed on the whole graph (cloud PEs as transit too): a search on a restricted graph
    only has longer distances, so the bound stays a lower bound. 16 landmarks cost ~0.5 s
    once per metric at 10,000 nodes and cut the nodes a search pops ~3x there."""
    n = len(adjacency)
    if n == 0:
        return []
    columns: list[list[int]] = []
    nearest = [math.inf] * n
    landmark = 0
    for _ in range(min(LANDMARKS, n)):
        dist = _all_distances(adjacency, latency_us, landmark)
        columns.append([-1 if d == math.inf else int(d) for d in dist])
        nearest = [min(a, b) for a, b in zip(nearest, dist)]
        landmark = max(range(n), key=lambda v: nearest[v] if nearest[v] != math.inf else -1)
        if nearest[landmark] <= 0:
            break
    return list(zip(*columns))


def _all_distances(adjacency: list[list[tuple[int, int]]], latency_us: list[int], src: int) -> list[float]:
    dist: list[float] = [math.inf] * len(adjacency)
    dist[src] = 0
    heap = [(0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, e in adjacency[u]:
            nd = d + latency_us[e]
            if nd < dist[v]:
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    return dist
