"""The typed model: proto-JSON aliases, oneofs, identity without the source, Python construction."""

from __future__ import annotations

import pydantic
import pytest

from harness.istio.model import (
    ConsistentHashLB,
    Destination,
    DestinationRule,
    DestinationRuleSpec,
    Distribute,
    HTTPRoute,
    HTTPRouteDestination,
    HTTPSettings,
    ObjectMeta,
    OutlierDetection,
    Source,
    StringMatch,
    Subset,
    VirtualService,
    VirtualServiceSpec,
    proto_json_name,
)


def make_vs(name: str = "reviews", source: Source | None = None) -> VirtualService:
    route = HTTPRoute(route=(HTTPRouteDestination(destination=Destination(host="reviews", subset="v1")),))
    return VirtualService(
        api_version="networking.istio.io/v1",
        metadata=ObjectMeta(name=name),
        spec=VirtualServiceSpec(hosts=("reviews",), http=(route,)),
        source=source,
    )


@pytest.mark.parametrize(
    ("field", "alias"),
    [
        ("consecutive_5xx_errors", "consecutive5xxErrors"),
        ("http1_max_pending_requests", "http1MaxPendingRequests"),
        ("http2_keep_alive", "http2KeepAlive"),
        ("h2_upgrade_policy", "h2UpgradePolicy"),
        ("mirror_percentage", "mirrorPercentage"),
        ("from_", "from"),
    ],
)
def test_model_aliases_are_proto_json_names(field: str, alias: str) -> None:
    assert proto_json_name(field) == alias


def test_model_fields_carry_their_aliases() -> None:
    assert OutlierDetection.model_fields["consecutive_5xx_errors"].alias == "consecutive5xxErrors"
    assert HTTPSettings.model_fields["http1_max_pending_requests"].alias == "http1MaxPendingRequests"
    assert Distribute.model_fields["from_"].alias == "from"


def test_model_accepts_python_lists_and_numbers_for_durations() -> None:
    dest = HTTPRouteDestination(destination=Destination(host="r"))
    route = HTTPRoute(timeout=0.5, route=[dest])  # type: ignore[arg-type]  # lists are accepted at run time
    assert route.timeout == 0.5
    assert route.route == (dest,)
    assert HTTPRoute(timeout="1h30m").timeout == 5400.0  # type: ignore[arg-type]


def test_model_unset_fields_are_none_or_empty() -> None:
    vs = make_vs()
    route = vs.spec.http[0]
    assert route.timeout is None and route.retries is None and route.match == () and route.mirrors == ()
    assert vs.spec.gateways == () and vs.metadata.labels == {} and vs.metadata.namespace == "default"
    assert route.route[0].weight == 0


def test_model_is_frozen() -> None:
    vs = make_vs()
    with pytest.raises(pydantic.ValidationError):
        vs.metadata = ObjectMeta(name="other")


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (StringMatch, {"exact": "a", "prefix": "b"}),
        (ConsistentHashLB, {"http_header_name": "x", "use_source_ip": True}),
    ],
)
def test_model_oneof_allows_at_most_one(cls: type[pydantic.BaseModel], kwargs: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError, match="only one of"):
        cls(**kwargs)


def test_model_empty_string_match_is_allowed() -> None:
    assert StringMatch() == StringMatch(exact=None, prefix=None, regex=None)


def test_model_key_and_ref() -> None:
    vs = make_vs()
    assert vs.key == ("VirtualService", "default", "reviews")
    assert vs.ref == "VirtualService/reviews"
    dr = DestinationRule(
        api_version="networking.istio.io/v1beta1",
        metadata=ObjectMeta(name="reviews", namespace="shop"),
        spec=DestinationRuleSpec(host="reviews", subsets=(Subset(name="v1", labels={"version": "v1"}),)),
    )
    assert dr.key == ("DestinationRule", "shop", "reviews")


def test_model_equality_and_hash_ignore_source() -> None:
    a = make_vs(source=Source(file="a.yaml", line=1))
    b = make_vs(source=Source(file="b.yaml", line=9))
    assert a == b and hash(a) == hash(b)
    assert a != make_vs(name="other")
    assert len({a, b}) == 1


def test_model_metadata_ignores_server_fields_but_not_typos() -> None:
    meta = ObjectMeta.model_validate({"name": "r", "uid": "1", "resourceVersion": "7", "managedFields": []})
    assert meta.name == "r"
    with pytest.raises(pydantic.ValidationError):
        ObjectMeta.model_validate({"name": "r", "namspace": "x"})
