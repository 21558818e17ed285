"""Reading an inventory mapping field by field while collecting every problem with its
location, so that one pass reports them all (see ``loader.py``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from s2cvpn.network.inventory import IPAddress


def item_where(section: str, index: int, item: Any, key: str) -> str:
    label = item.get(key) if isinstance(item, Mapping) else None
    return f"{section}[{index}] ({label})" if label is not None else f"{section}[{index}]"


class Problems:
    """Collects problems with their location, and reads typed fields (recording a
    problem and returning None when a field is missing or wrong)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.seen_nodes: set[str] = set()

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def unknown_keys(self, where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
        for key in raw:
            if key not in allowed:
                self.add(where, f"unknown key '{key}'")

    def mapping(self, where: str, raw: Any, allowed: set[str]) -> bool:
        if not isinstance(raw, Mapping):
            self.add(where, "missing" if raw is None else f"must be a mapping, not {type(raw).__name__}")
            return False
        self.unknown_keys(where, raw, allowed)
        return True

    def sequence(self, where: str, raw: Any) -> list[Any]:
        if not isinstance(raw, list):
            self.add(where, "missing" if raw is None else "must be a list")
            return []
        return raw

    def text(self, where: str, raw: Mapping[str, Any], key: str) -> str | None:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value
        self.add(where, f"missing '{key}'" if value is None else f"{key} must be a non-empty string")
        return None

    def number(self, where: str, raw: Mapping[str, Any], key: str, *,
               minimum: float | None = None, maximum: float | None = None) -> float | None:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(where, f"missing '{key}'" if value is None else f"{key} must be a number, not {value!r}")
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"[{minimum if minimum is not None else '-inf'}, {maximum if maximum is not None else 'inf'}]"
            self.add(where, f"{key} {value} is outside {bounds}")
            return None
        return float(value)

    def positive_int(self, where: str, raw: Mapping[str, Any], key: str) -> int | None:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, f"missing '{key}'" if value is None else f"{key} must be an integer, not {value!r}")
            return None
        if value <= 0:
            self.add(where, f"{key} must be > 0, not {value}")
            return None
        return value

    def asn(self, where: str, raw: Mapping[str, Any], key: str) -> int | None:
        value = self.positive_int(where, raw, key)
        if value is not None and value > 0xFFFFFFFF:
            self.add(where, f"{key} {value} is not a valid AS number")
            return None
        return value

    def percent(self, where: str, raw: Mapping[str, Any], key: str) -> float | None:
        """Availability written in percent, in (0, 100]; returned as a fraction."""
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(where, f"missing '{key}'" if value is None else f"{key} must be a number, not {value!r}")
            return None
        if not 0 < value <= 100:
            self.add(where, f"{key} {value} is outside (0, 100]")
            return None
        return round(float(value) / 100.0, 12)  # 99.9 / 100 is 0.9990000000000001 in binary

    def address(self, where: str, raw: Mapping[str, Any], key: str, version: int | None = None) -> IPAddress | None:
        value = raw.get(key)
        try:
            address = ipaddress.ip_address(str(value)) if value is not None else None
        except ValueError:
            self.add(where, f"{key} {value!r} is not an IP address")
            return None
        if address is None:
            self.add(where, f"missing '{key}'")
        elif version is not None and address.version != version:
            self.add(where, f"{key} {address} is not an IPv{version} address")
            return None
        return address

    def addresses(self, where: str, raw: Mapping[str, Any], key: str) -> list[IPAddress]:
        values = raw.get(key)
        if values is None:
            return []
        if not isinstance(values, list):
            self.add(where, f"{key} must be a list of IP addresses")
            return []
        out: list[IPAddress] = []
        for value in values:
            try:
                out.append(ipaddress.ip_address(str(value)))
            except ValueError:
                self.add(where, f"{key}: {value!r} is not an IP address")
        if len(set(out)) != len(out):
            self.add(where, f"{key} lists an address twice")
        return out

    def string_list(self, where: str, raw: Mapping[str, Any], key: str) -> list[str]:
        values = raw.get(key)
        if values is None:
            return []
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            self.add(where, f"{key} must be a list of non-empty strings")
            return []
        return values

    def day(self, where: str, raw: Mapping[str, Any], key: str) -> date | None:
        value = raw.get(key)
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value)) if value is not None else self._missing(where, key)
        except ValueError:
            self.add(where, f"{key} {value!r} is not a date (YYYY-MM-DD)")
            return None

    def _missing(self, where: str, key: str) -> None:
        self.add(where, f"missing '{key}'")
