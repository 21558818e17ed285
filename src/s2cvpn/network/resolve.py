"""Where a request lands: CE address -> attachment, providerEdge address -> cloud PE.

The address indexes are built once per inventory (``Inventory.cached``), so each
resolution is a couple of dict lookups whatever the inventory size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from s2cvpn.errors import LocationNotServed
from s2cvpn.network.inventory import Attachment, Inventory, IPAddress, Node
from s2cvpn.network.plans import ConnectionRequest, Endpoints

Place = TypeVar("Place", Attachment, Node)


@dataclass(frozen=True)
class AddressIndex:
    """Address -> attachment and address -> cloud PE, for O(1) resolution."""

    attachments: dict[IPAddress, Attachment]
    cloud_pes: dict[IPAddress, Node]

    @classmethod
    def build(cls, inventory: Inventory) -> AddressIndex:
        attachments = {a: att for att in inventory.attachments.values() for a in att.ce_addresses}
        cloud_pes = {
            a: node for node in inventory.nodes.values() if node.role == "cloud-pe" for a in node.addresses
        }
        return cls(attachments=attachments, cloud_pes=cloud_pes)


def address_index(inventory: Inventory) -> AddressIndex:
    """The inventory's address index, built on first use."""
    return inventory.cached("resolve.address_index", AddressIndex.build)


def resolve_endpoints(inventory: Inventory, request: ConnectionRequest) -> Endpoints:
    """Find the attachment(s) and cloud PE(s) a request names, or raise LocationNotServed.

    The CE's IPv4 and IPv6 identities, when both are given, must name the same attachment
    (they are one router). A secondary address that resolves to nothing is an error too:
    the consumer asked for a second site or PE we do not have. A secondary that resolves
    to the primary's own attachment/PE is reported as ``None`` (no second place).
    """
    index = address_index(inventory)
    attachment = _attachment(index, request.ce_primary, request.client_id, "customerEdge primary")
    cloud_pe = _cloud_pe(index, request.pe_primary, "providerEdge primary")
    secondary_attachment = None
    if request.ce_secondary:
        found = _attachment(index, request.ce_secondary, request.client_id, "customerEdge secondary")
        secondary_attachment = found if found.id != attachment.id else None
    secondary_cloud_pe = None
    if request.pe_secondary:
        node = _cloud_pe(index, request.pe_secondary, "providerEdge secondary")
        secondary_cloud_pe = node if node.name != cloud_pe.name else None
    return Endpoints(
        attachment=attachment,
        cloud_pe=cloud_pe,
        secondary_attachment=secondary_attachment,
        secondary_cloud_pe=secondary_cloud_pe,
    )


def _shown(addresses: Sequence[IPAddress]) -> str:
    return " / ".join(str(a) for a in addresses)


def _one_place(
    table: Mapping[IPAddress, Place], addresses: Sequence[IPAddress], role: str, unknown: str, kind: str, key: Callable[[Place], str]
) -> Place:
    """The one inventory object every address of an edge resolves to (an edge may give its
    IPv4 and IPv6 identity: both must name the same router)."""
    if not addresses:
        raise LocationNotServed(f"{role}: no address given")
    found: Place | None = None
    for address in addresses:
        place = table.get(address)
        if place is None:
            raise LocationNotServed(f"{role} {address} {unknown}")
        if found is not None and key(found) != key(place):
            raise LocationNotServed(f"{role} {_shown(addresses)}: the addresses belong to two different {kind}")
        found = place
    assert found is not None
    return found


def _attachment(index: AddressIndex, addresses: Sequence[IPAddress], client_id: str, role: str) -> Attachment:
    found = _one_place(index.attachments, addresses, role, "is not attached to this network", "attachments", lambda a: a.id)
    if found.customers is not None and client_id not in found.customers:
        raise LocationNotServed(f"{role} {_shown(addresses)} is attached for another customer")
    return found


def _cloud_pe(index: AddressIndex, addresses: Sequence[IPAddress], role: str) -> Node:
    return _one_place(index.cloud_pes, addresses, role, "is not a cloud provider edge of this network", "PEs", lambda n: n.name)
