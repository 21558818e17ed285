"""Inventory YAML -> validated, frozen ``Inventory``, all or nothing.

Why one pass that collects every problem: an operator fixing a 10,000-line inventory
wants the whole list at once, each with its location (``links[3] (pe-a--p-1): unknown node
'p-9'``), not one error per restart. Nothing is built unless the whole file is valid, so
the service never runs on a half-loaded network.

The file format is documented at the top of ``data/demo.yaml``. Availabilities are
written in percent (``availability_percent: 99.95``) and converted to fractions here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from s2cvpn.network import pools, pricing
from s2cvpn.network.inventory import (
    Attachment,
    Cloud,
    Inventory,
    IPAddress,
    Link,
    Location,
    Node,
    Provider,
    Upgrade,
)
from s2cvpn.network.problems import Problems, item_where

TOP_KEYS = {"version", "provider", "tiers", "pricing", "pools", "locations", "nodes", "links", "attachments"}


class InventoryError(ValueError):
    """The inventory is invalid; ``problems`` lists every problem with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "\n  ".join(self.problems)
        super().__init__(f"invalid inventory ({len(self.problems)} problem(s)):\n  {shown}")


def _read_yaml(path: str | Path) -> Any:
    """Parse with libyaml when present: the 10,000-node generated files load in well under
    a second with it, several seconds without."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=loader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise InventoryError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise InventoryError([f"{path}: not valid YAML: {exc}"]) from exc


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate the inventory file at ``path``; raise ``InventoryError`` if invalid."""
    return inventory_from_mapping(_read_yaml(path))


def check_inventory_file(path: str | Path) -> list[str]:
    """Every problem in the inventory file at ``path``; an empty list means it is valid."""
    try:
        load_inventory(path)
    except InventoryError as exc:
        return exc.problems
    return []


def inventory_from_mapping(data: Any) -> Inventory:
    """Validate an already-parsed inventory (as YAML gives it, or as the generator builds
    it) and build the frozen ``Inventory``; raise ``InventoryError`` listing every problem."""
    p = Problems()
    if not isinstance(data, Mapping):
        raise InventoryError(["(top): the inventory must be a mapping"])
    p.unknown_keys("(top)", data, TOP_KEYS)
    provider = _provider(p, data.get("provider"))
    tiers = pricing.tiers_from_mapping(p, data.get("tiers"))
    price_book = pricing.pricing_from_mapping(p, data.get("pricing"), tiers)
    pool_config = pools.pools_from_mapping(p, data.get("pools"), provider)
    locations = _named_locations(p, data.get("locations"))
    nodes = _nodes(p, data.get("nodes"), locations)
    links = _links(p, data.get("links"), nodes)
    attachments = _attachments(p, data.get("attachments"), nodes, locations)
    _check_addresses_unique(p, nodes, attachments)
    _check_connected(p, nodes, links)
    if p.items or provider is None or tiers is None or price_book is None or pool_config is None:
        raise InventoryError(p.items or ["(top): invalid inventory"])
    return Inventory(
        provider=provider, tiers=tiers, pricing=price_book, nodes=nodes, links=links,
        attachments=attachments, pools=pool_config,
    )


def _provider(p: Problems, raw: Any) -> Provider | None:
    where = "provider"
    if not p.mapping(where, raw, {"name", "asn", "currency"}):
        return None
    name = p.text(where, raw, "name")
    asn = p.asn(where, raw, "asn")
    currency = p.text(where, raw, "currency")
    if currency is not None and not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        p.add(where, f"currency {currency!r} is not an ISO 4217 code such as 'EUR'")
        currency = None
    if name is None or asn is None or currency is None:
        return None
    return Provider(name=name, asn=asn, currency=currency)


def _nodes(p: Problems, raw: Any, locations: dict[str, Location]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    loopbacks: dict[ipaddress.IPv4Address, str] = {}
    allowed = {"name", "role", "loopback", "location", "addresses", "cloud"}
    for i, item in enumerate(p.sequence("nodes", raw)):
        where = item_where("nodes", i, item, "name")
        if not p.mapping(where, item, allowed):
            continue
        name = p.text(where, item, "name")
        role = item.get("role")
        if role not in ("access-pe", "p", "cloud-pe"):
            p.add(where, f"role {role!r} is not one of access-pe, p, cloud-pe")
        loopback = p.address(where, item, "loopback", version=4)
        location = _location_ref(p, where, item.get("location"), locations)
        addresses = p.addresses(where, item, "addresses")
        cloud = _cloud(p, where, item.get("cloud"))
        if role == "cloud-pe":
            if not addresses:
                p.add(where, "a cloud-pe needs at least one address (the providerEdge addresses it answers)")
            if cloud is None and "cloud" not in item:
                p.add(where, "a cloud-pe needs 'cloud' (provider, region)")
        elif role in ("access-pe", "p"):
            if item.get("addresses"):
                p.add(where, f"only a cloud-pe has 'addresses' (this node is a {role})")
            if item.get("cloud") is not None:
                p.add(where, f"only a cloud-pe has 'cloud' (this node is a {role})")
        if loopback is not None:
            if isinstance(loopback, ipaddress.IPv4Address) and loopback in loopbacks:
                p.add(where, f"loopback {loopback} already used by node '{loopbacks[loopback]}'")
            elif isinstance(loopback, ipaddress.IPv4Address):
                loopbacks[loopback] = name or "?"
        if name is None:
            continue
        if name in p.seen_nodes:
            p.add(where, f"duplicate node name '{name}'")
            continue
        p.seen_nodes.add(name)  # known even if invalid, so its links do not cascade errors
        if role in ("access-pe", "p", "cloud-pe") and isinstance(loopback, ipaddress.IPv4Address) and location:
            nodes[name] = Node(
                name=name, role=role, loopback=loopback, location=location,
                addresses=tuple(addresses) if role == "cloud-pe" else (),
                cloud=cloud if role == "cloud-pe" else None,
            )
    return nodes


def _cloud(p: Problems, where: str, raw: Any) -> Cloud | None:
    if raw is None:
        return None
    if not p.mapping(f"{where}.cloud", raw, {"provider", "region"}):
        return None
    provider = p.text(f"{where}.cloud", raw, "provider")
    region = p.text(f"{where}.cloud", raw, "region")
    return Cloud(provider=provider, region=region) if provider and region else None


def _links(p: Problems, raw: Any, nodes: dict[str, Node]) -> dict[str, Link]:
    links: dict[str, Link] = {}
    allowed = {"id", "a", "b", "capacity_mbps", "latency_ms", "availability_percent", "srlgs", "upgrades"}
    for i, item in enumerate(p.sequence("links", raw)):
        if isinstance(item, Mapping) and "id" not in item and "a" in item and "b" in item:
            item = {**item, "id": f"{item['a']}--{item['b']}"}
        where = item_where("links", i, item, "id")
        if not p.mapping(where, item, allowed):
            continue
        link_id = p.text(where, item, "id")
        ends = [p.text(where, item, end) for end in ("a", "b")]
        for end in ends:
            if end is not None and end not in nodes and end not in p.seen_nodes:
                p.add(where, f"unknown node '{end}'")
        if ends[0] is not None and ends[0] == ends[1]:
            p.add(where, f"both ends are '{ends[0]}'")
        capacity = p.positive_int(where, item, "capacity_mbps")
        latency = p.number(where, item, "latency_ms", minimum=0.0)
        availability = p.percent(where, item, "availability_percent")
        srlgs = p.string_list(where, item, "srlgs")
        upgrades = _upgrades(p, where, item.get("upgrades"), capacity)
        if link_id is not None and link_id in links:
            p.add(where, f"duplicate link id '{link_id}'")
            continue
        if link_id is None or None in ends or capacity is None or latency is None or availability is None:
            continue
        if ends[0] not in nodes or ends[1] not in nodes or upgrades is None:
            continue
        links[link_id] = Link(
            id=link_id, a=ends[0], b=ends[1], capacity_mbps=capacity, latency_ms=latency,  # type: ignore[arg-type]
            availability=availability, srlgs=frozenset(srlgs), upgrades=upgrades,
        )
    return links


def _upgrades(p: Problems, where: str, raw: Any, base_mbps: int | None) -> tuple[Upgrade, ...] | None:
    if raw is None:
        return ()
    out: list[Upgrade] = []
    ok = True
    for j, item in enumerate(p.sequence(f"{where}.upgrades", raw)):
        at = f"{where}.upgrades[{j}]"
        if not p.mapping(at, item, {"capacity_mbps", "available_from"}):
            ok = False
            continue
        capacity = p.positive_int(at, item, "capacity_mbps")
        day = p.day(at, item, "available_from")
        if capacity is None or day is None:
            ok = False
            continue
        out.append(Upgrade(capacity_mbps=capacity, available_from=day))
    out.sort(key=lambda u: u.available_from)
    if ok and base_mbps is not None:
        # Assessment bisects over upgrade dates, which needs capacity never to go down.
        previous = base_mbps
        for upgrade in out:
            if upgrade.capacity_mbps < previous:
                p.add(where, f"upgrade on {upgrade.available_from} to {upgrade.capacity_mbps} Mbps "
                             f"would shrink the link ({previous} Mbps before)")
                ok = False
            previous = max(previous, upgrade.capacity_mbps)
    return tuple(out) if ok else None


def _attachments(
    p: Problems, raw: Any, nodes: dict[str, Node], locations: dict[str, Location]
) -> dict[str, Attachment]:
    out: dict[str, Attachment] = {}
    allowed = {"id", "access_pe", "port_capacity_mbps", "location", "ce_addresses", "customers"}
    for i, item in enumerate(p.sequence("attachments", raw)):
        where = item_where("attachments", i, item, "id")
        if not p.mapping(where, item, allowed):
            continue
        att_id = p.text(where, item, "id")
        pe = p.text(where, item, "access_pe")
        if pe is not None and pe not in nodes and pe not in p.seen_nodes:
            p.add(where, f"unknown node '{pe}'")
        elif pe is not None and pe in nodes and nodes[pe].role != "access-pe":
            p.add(where, f"node '{pe}' is a {nodes[pe].role}, attachments go on an access-pe")
        capacity = p.positive_int(where, item, "port_capacity_mbps")
        location = _location_ref(p, where, item.get("location"), locations)
        addresses = p.addresses(where, item, "ce_addresses")
        if not addresses and "ce_addresses" in item:
            p.add(where, "ce_addresses is empty")
        elif "ce_addresses" not in item:
            p.add(where, "missing 'ce_addresses'")
        customers = None
        if item.get("customers") is not None:
            customers = frozenset(p.string_list(where, item, "customers"))
            if not customers:
                p.add(where, "customers is empty (omit it to allow every customer)")
        if att_id is not None and att_id in out:
            p.add(where, f"duplicate attachment id '{att_id}'")
            continue
        if att_id is None or pe not in nodes or capacity is None or location is None or not addresses:
            continue
        out[att_id] = Attachment(
            id=att_id, access_pe=pe, port_capacity_mbps=capacity, location=location,  # type: ignore[arg-type]
            ce_addresses=tuple(addresses), customers=customers,
        )
    return out


def _check_addresses_unique(p: Problems, nodes: dict[str, Node], attachments: dict[str, Attachment]) -> None:
    """A CE or providerEdge address must name one place, or resolution would be ambiguous."""
    owner: dict[IPAddress, str] = {}
    for node in nodes.values():
        for address in node.addresses:
            if address in owner:
                p.add(f"nodes ({node.name})", f"address {address} already used by {owner[address]}")
            owner[address] = f"node '{node.name}'"
    for att in attachments.values():
        for address in att.ce_addresses:
            if address in owner:
                p.add(f"attachments ({att.id})", f"address {address} already used by {owner[address]}")
            owner[address] = f"attachment '{att.id}'"


def _check_connected(p: Problems, nodes: dict[str, Node], links: dict[str, Link]) -> None:
    """A router without links can never carry a session: almost certainly a typo."""
    linked = {end for link in links.values() for end in (link.a, link.b)}
    for name in nodes:
        if name not in linked:
            p.add(f"nodes ({name})", "has no links")


def _named_locations(p: Problems, raw: Any) -> dict[str, Location]:
    out: dict[str, Location] = {}
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        p.add("locations", "must be a mapping of name -> {city, latitude, longitude}")
        return out
    for name, item in raw.items():
        location = _location(p, f"locations.{name}", item)
        if location is not None:
            out[str(name)] = location
    return out


def _location(p: Problems, where: str, raw: Any) -> Location | None:
    if not p.mapping(where, raw, {"city", "latitude", "longitude"}):
        return None
    city = p.text(where, raw, "city")
    lat = p.number(where, raw, "latitude", minimum=-90.0, maximum=90.0)
    lon = p.number(where, raw, "longitude", minimum=-180.0, maximum=180.0)
    return Location(city=city, latitude=lat, longitude=lon) if city and lat is not None and lon is not None else None


def _location_ref(p: Problems, where: str, raw: Any, named: dict[str, Location]) -> Location | None:
    """A location is either the name of an entry in ``locations`` or an inline mapping."""
    if isinstance(raw, str):
        if raw not in named:
            p.add(where, f"unknown location '{raw}'")
        return named.get(raw)
    if raw is None:
        p.add(where, "missing 'location'")
        return None
    return _location(p, f"{where}.location", raw)
