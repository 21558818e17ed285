"""Request and response bodies of the API: camelCase, strict, bounded.

Every request model forbids unknown properties (CAMARA request-body strictness) and uses
strict scalar types, so ``"100"`` is not a bandwidth. Numeric bounds raise pydantic's
range errors, which ``api/handlers.py`` answers as 400 OUT_OF_RANGE; everything else is
400 INVALID_ARGUMENT.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from s2cvpn.network import addresses

XCORRELATOR_PATTERN = r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$"
DateTime = Annotated[datetime, WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 64})]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _host(version: int):  # type: ignore[no-untyped-def]
    def check(value: str) -> str:
        try:
            address = addresses.host(value)
        except ValueError:
            raise ValueError(f"not a single IPv{version} host address") from None
        if address.version != version:
            raise ValueError(f"an IPv{address.version} address where IPv{version} is expected")
        return str(address)

    return check


def _prefix(version: int):  # type: ignore[no-untyped-def]
    def check(value: str) -> str:
        try:
            network = addresses.prefix(value)
        except ValueError:
            raise ValueError(f"not an IPv{version} address or prefix") from None
        if network.version != version:
            raise ValueError(f"an IPv{network.version} value where IPv{version} is expected")
        return value

    return check


def _any_prefix(value: str) -> str:
    try:
        addresses.prefix(value)
    except ValueError:
        raise ValueError("not an IP prefix in CIDR notation") from None
    return value


Ipv4Host = Annotated[StrictStr, Field(max_length=15, examples=["198.51.100.10"], json_schema_extra={"format": "ipv4"}), AfterValidator(_host(4))]
Ipv6Host = Annotated[StrictStr, Field(max_length=45, examples=["2001:db8:100::10"], json_schema_extra={"format": "ipv6"}), AfterValidator(_host(6))]
Ipv4Prefix = Annotated[StrictStr, Field(max_length=18, examples=["10.10.0.0/24"]), AfterValidator(_prefix(4))]
Ipv6Prefix = Annotated[StrictStr, Field(max_length=49, examples=["2001:db8:1::/64"]), AfterValidator(_prefix(6))]
AnyPrefix = Annotated[StrictStr, Field(max_length=49, examples=["192.168.10.0/24"]), AfterValidator(_any_prefix)]


class IpAddress(RequestModel):
    """A router's identity: its IPv4 and/or IPv6 address (at least one)."""

    ipv4Address: Ipv4Host | None = Field(None, description="IPv4 host address")
    ipv6Address: Ipv6Host | None = Field(None, description="IPv6 host address")

    @model_validator(mode="after")
    def _one_family(self) -> IpAddress:
        if self.ipv4Address is None and self.ipv6Address is None:
            raise ValueError("give ipv4Address, ipv6Address or both")
        return self


class Edge(RequestModel):
    """One end of the VPN: the customer edge router (CE) or the cloud provider edge (PE)."""

    type: Literal["site", "cloud"] = Field(description="Whether the edge is at a customer site or in a cloud")
    primaryIpAddress: IpAddress = Field(description="Address of the primary router")
    secondaryIpAddress: IpAddress | None = Field(None, description="Address of the secondary router (protection)")
    location: Annotated[StrictStr, Field(max_length=256)] | None = Field(None, description="Physical location of the router")
    prefixes: Annotated[list[AnyPrefix], Field(max_length=16)] | None = Field(
        None, description="LAN prefixes behind a customer edge (CIDR)"
    )


class Address(RequestModel):
    """An application server: a single address or a prefix, IPv4 and/or IPv6."""

    ipv4Address: Ipv4Prefix | None = Field(None, description="IPv4 address or CIDR prefix")
    ipv6Address: Ipv6Prefix | None = Field(None, description="IPv6 address or CIDR prefix")

    @model_validator(mode="after")
    def _one_family(self) -> Address:
        if self.ipv4Address is None and self.ipv6Address is None:
            raise ValueError("give ipv4Address, ipv6Address or both")
        return self


Port = Annotated[StrictInt, Field(ge=0, le=65535, json_schema_extra={"format": "int32"})]


class PortRange(RequestModel):
    from_: Port = Field(alias="from", description="First port of the range")
    to: Port = Field(description="Last port of the range (inclusive)")

    model_config = ConfigDict(extra="forbid", populate_by_name=False, serialize_by_alias=True)

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.from_ > self.to:
            raise ValueError("'from' must not exceed 'to'")
        return self


class Ports(RequestModel):
    ranges: Annotated[list[PortRange], Field(min_length=1, max_length=16)] | None = Field(None, description="Port ranges")
    ports: Annotated[list[Port], Field(min_length=1, max_length=64)] | None = Field(None, description="Single ports")


class Flow(RequestModel):
    """An application flow the VPN carries between the CE prefixes and the servers."""

    protocol: Literal["TCP", "UDP", "ANY"] = Field(description="Transport protocol")
    serverPorts: Ports | None = Field(None, description="Ports on the application servers")
    clientPorts: Ports | None = Field(None, description="Ports on the customer side")


DurationUnit = Literal["minutes", "hours", "days", "months", "years"]


class Duration(RequestModel):
    """A length of time; a month is 730 hours and a year 8760 hours."""

    value: Annotated[
        StrictFloat | StrictInt,
        Field(gt=0, le=1_000_000_000),
        WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000_000}),
    ] = Field(description="How many units")
    unit: DurationUnit = Field(description="The unit of value")


class SinkCredential(RequestModel):
    """How the service authenticates to the sink; written only, never returned."""

    credentialType: Literal["ACCESSTOKEN"] = Field(description="Only ACCESSTOKEN is supported")
    accessToken: Annotated[StrictStr, Field(min_length=1, max_length=4096)] = Field(description="Bearer token for the sink")
    accessTokenExpiresUtc: DateTime = Field(description="When the access token expires (RFC 3339 with a time zone)")
    accessTokenType: Literal["bearer"] = Field(description="Token type")

    @model_validator(mode="after")
    def _zoned(self) -> SinkCredential:
        if self.accessTokenExpiresUtc.tzinfo is None:
            raise ValueError("accessTokenExpiresUtc needs a time zone")
        return self


Sla = Literal["A", "AA", "AAA"]
Bandwidth = Annotated[StrictInt, Field(ge=1, le=1_000_000, json_schema_extra={"format": "int32"})]
Latency = Annotated[StrictInt, Field(ge=1, le=10_000, json_schema_extra={"format": "int32"})]
Asn = Annotated[StrictInt, Field(ge=1, le=4_294_967_295, json_schema_extra={"format": "int64"})]
Sink = Annotated[StrictStr, Field(max_length=2048, pattern=r"^https?://.+$", json_schema_extra={"format": "uri"})]


class ConnectionFields(RequestModel):
    """What describes a connection; shared by sessions and assessments."""

    customerEdge: Edge = Field(description="The customer edge router (CE)")
    providerEdge: Edge = Field(description="The cloud provider edge (PE) where the VPN ends")
    applicationServers: Annotated[list[Address], Field(min_length=1, max_length=16)] = Field(
        description="Application servers (cloud VMs) behind the PE"
    )
    isProtected: StrictBool = Field(False, description="Two diverse paths; needs secondary addresses on both edges")
    guaranteeBandwidth: Bandwidth = Field(description="Guaranteed bandwidth in Mbps")
    maxLatency: Latency | None = Field(None, description="Upper bound of one-way latency in ms")
    duration: Duration | None = Field(None, description="How long the session lasts; default from the operator")

    @model_validator(mode="after")
    def _protection_needs_secondaries(self) -> ConnectionFields:
        if self.isProtected and (self.customerEdge.secondaryIpAddress is None or self.providerEdge.secondaryIpAddress is None):
            raise ValueError("isProtected needs secondaryIpAddress on customerEdge and providerEdge")
        return self


class SessionCreate(ConnectionFields):
    serviceName: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(None, description="A name for the service")
    applicationFlows: Annotated[list[Flow], Field(min_length=1, max_length=16)] | None = Field(
        None, description="Only these flows are carried; absent: all traffic"
    )
    sla: Sla = Field(description="Availability tier")
    routeProtocol: Literal["static", "BGP"] = Field("static", description="Routing between CE and PE")
    customerAsn: Asn | None = Field(None, description="The customer's AS number; required with BGP, refused with static")
    sink: Sink | None = Field(None, description="URL receiving CloudEvents about this session")
    sinkCredential: SinkCredential | None = Field(None, description="Credential for the sink; never returned")

    @model_validator(mode="after")
    def _asn_goes_with_bgp(self) -> SessionCreate:
        if self.routeProtocol == "BGP" and self.customerAsn is None:
            raise ValueError("customerAsn is required when routeProtocol is BGP")
        if self.routeProtocol == "static" and self.customerAsn is not None:
            raise ValueError("customerAsn is only allowed when routeProtocol is BGP")
        return self


class AssessmentRequest(ConnectionFields):
    sla: Sla | None = Field(None, description="Assess this tier only")


class SessionUpdate(RequestModel):
    """Merge patch of the changeable fields; ``maxLatency: null`` removes the bound."""

    guaranteeBandwidth: Bandwidth | None = Field(None, description="New guaranteed bandwidth in Mbps")
    sla: Sla | None = Field(None, description="New availability tier")
    maxLatency: Latency | None = Field(None, description="New latency bound in ms; null removes it")

    @model_validator(mode="after")
    def _something(self) -> SessionUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of guaranteeBandwidth, sla, maxLatency")
        if "guaranteeBandwidth" in self.model_fields_set and self.guaranteeBandwidth is None:
            raise ValueError("guaranteeBandwidth cannot be removed")
        if "sla" in self.model_fields_set and self.sla is None:
            raise ValueError("sla cannot be removed")
        return self


class ExtendRequest(RequestModel):
    requestedAdditionalDuration: Duration = Field(description="Time to add to the session")


Count = Annotated[int, Field(ge=0, le=2_147_483_647, json_schema_extra={"format": "int32"})]
Measure = Annotated[float, Field(ge=0, le=1_000_000_000)]


class Rent(ResponseModel):
    amount: Measure = Field(description="Monthly price")
    currency: str = Field(max_length=3, description="ISO 4217 currency code")


class AssessmentOption(ResponseModel):
    sla: Sla = Field(description="The availability tier this option offers")
    rent: Rent = Field(description="Monthly rent of the connection in this tier")
    waitDays: Annotated[int, Field(ge=1, le=3650, json_schema_extra={"format": "int32"})] | None = Field(
        None, description="Days until the capacity exists"
    )
    estimatedLatency: Measure = Field(description="Estimated one-way latency in ms")


class AssessmentResult(ResponseModel):
    feasible: bool = Field(description="Whether at least one tier can be provided")
    options: list[AssessmentOption] = Field(max_length=3, description="One option per tier the network can carry")
    contextCode: str | None = Field(None, max_length=96, description="Why the connection is not feasible (SITE_TO_CLOUD_VPN.*)")
    contextMessage: str | None = Field(None, max_length=512, description="Human-readable explanation of contextCode")


class DurationHours(ResponseModel):
    """A length of time in hours."""

    value: Measure = Field(description="How many hours")
    unit: Literal["hours"] = Field("hours", description="Always hours")


class SessionInfo(ResponseModel):
    """A session as the API returns it: the request (without credential) plus its state."""

    sessionId: str = Field(max_length=36, json_schema_extra={"format": "uuid"}, description="Session identifier chosen by the server")
    serviceName: str | None = Field(None, max_length=64, description="The name given at creation")
    customerEdge: Edge = Field(description="The customer edge router (CE)")
    providerEdge: Edge = Field(description="The cloud provider edge (PE)")
    applicationServers: list[Address] = Field(max_length=16, description="Application servers behind the PE")
    applicationFlows: list[Flow] | None = Field(None, max_length=16, description="The flows carried; absent: all traffic")
    isProtected: bool = Field(description="Whether the VPN uses two diverse paths")
    sla: Sla = Field(description="Availability tier")
    guaranteeBandwidth: Bandwidth = Field(description="Guaranteed bandwidth in Mbps")
    maxLatency: Latency | None = Field(None, description="Upper bound of one-way latency in ms")
    routeProtocol: Literal["static", "BGP"] = Field(description="Routing between CE and PE")
    customerAsn: Asn | None = Field(None, description="The customer's AS number (BGP)")
    duration: Duration = Field(description="The granted duration, in hours, after extensions")
    sink: str | None = Field(None, max_length=2048, description="URL receiving CloudEvents about this session")
    status: Literal["REQUESTED", "AVAILABLE", "UNAVAILABLE"] = Field(description="Session status")
    statusInfo: Literal["DURATION_EXPIRED", "NETWORK_TERMINATED", "DELETE_REQUESTED"] | None = Field(
        None, description="Why the session is UNAVAILABLE; present only then"
    )
    createdAt: DateTime = Field(description="When the session was accepted (RFC 3339 with a time zone)")
    startedAt: DateTime | None = Field(None, description="When it became AVAILABLE (RFC 3339 with a time zone); absent while REQUESTED")
    expiresAt: DateTime | None = Field(None, description="When it ends or ended (RFC 3339 with a time zone); absent while REQUESTED")
    servicedDuration: DurationHours = Field(description="Time in service since startedAt (frozen at the end)")
    resourceGroupId: str | None = Field(None, max_length=64, description="The provider's identifier of the network resources")
    cloudGatewayIp: str | None = Field(None, max_length=45, description="Provider-side gateway address the CE routes to")
    providerAsn: Asn | None = Field(None, description="The provider's AS number for the CE's BGP session")
    actualSla: Sla | None = Field(None, description="Measured (or planned) availability tier")
    actualGuaranteeBandwidth: Bandwidth | None = Field(None, description="Measured (or planned) bandwidth in Mbps")
    actualLatency: Measure | None = Field(None, description="Measured (or planned) one-way latency in ms")
    actualPacketLossRate: Measure | None = Field(None, description="Measured packet loss rate")


class Pagination(ResponseModel):
    """Where this page sits in the caller's sessions."""

    page: Count = Field(description="This page, from 1")
    perPage: Count = Field(description="Items per page")
    totalCount: Count = Field(description="Sessions of the caller in all pages")
    totalPages: Count = Field(description="Number of pages")


class SessionList(ResponseModel):
    """A page of the caller's sessions."""

    items: list[SessionInfo] = Field(max_length=100, description="The sessions of this page, oldest first")
    pagination: Pagination = Field(description="Page position and totals")


class ErrorInfo(ResponseModel):
    """The CAMARA error body."""

    status: int = Field(ge=100, le=599, json_schema_extra={"format": "int32"}, description="HTTP status code of the response")
    code: str = Field(max_length=96, description="CAMARA error code (SCREAMING_SNAKE_CASE)")
    message: str = Field(max_length=512, description="Human-readable explanation")
