"""Istio ``HTTPRetry`` -> Envoy ``RetryPolicy``, as ``route/retry/retry.go:ConvertPolicy`` builds it.

Reference istio-semantics.md section 2.8:

- No ``retries``: istiod's default policy (2 retries on connect-failure, refused-stream, unavailable,
  cancelled and retriable-status-codes; 503 among the codes only up to 1.23; the previous_hosts
  predicate; 5 host selection attempts).
- ``attempts <= 0``: no retry policy at all (the default does not apply either).
- Otherwise the default with overrides: ``num_retries``; ``retryOn`` split on commas into
  ``retry_on`` tokens and ``retriable_status_codes`` (a part that is a registered HTTP status),
  ``retriable-status-codes`` appended when codes were given; ``per_try_timeout``;
  ``retryIgnorePreviousHosts`` false removes the predicate; ``retryRemoteLocalities`` adds the
  previous_priorities priority; ``backoff`` -> ``retry_back_off.base_interval``.
- A single destination with a consistent-hash DestinationRule starts from the default without the
  previous_hosts predicate, so that a retry stays on the hashed host: from 1.23, and whenever the DR
  has a ``consistentHash`` block, even one without a hash key (``routes.py`` decides).
"""

from __future__ import annotations

from http import HTTPStatus

from harness.istio.model import HTTPRetry, is_http_status
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.units import envoy_duration
from harness.mesh.local.translate.versions import Behaviour

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
RETRIABLE_STATUS_CODES = "retriable-status-codes"
DEFAULT_NUM_RETRIES = 2
HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5
PREVIOUS_PRIORITIES_UPDATE_FREQUENCY = 2


def default_retry_policy(behaviour: Behaviour, *, consistent_hash: bool = False) -> Resource:
    """istiod's policy for routes without ``retries`` (``DefaultPolicy`` / ``DefaultConsistentHashPolicy``)."""
    policy: Resource = {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": DEFAULT_NUM_RETRIES,
        "host_selection_retry_max_attempts": HOST_SELECTION_RETRY_MAX_ATTEMPTS,
    }
    if not consistent_hash:
        policy["retry_host_predicate"] = [_previous_hosts()]
    if behaviour.retry_on_503:
        policy["retriable_status_codes"] = [HTTPStatus.SERVICE_UNAVAILABLE.value]
    return policy


def translate_retries(
    retries: HTTPRetry | None, behaviour: Behaviour, *, consistent_hash: bool = False
) -> Resource | None:
    """``ConvertPolicy``: the route's ``retry_policy``, or None when ``attempts`` disables retries."""
    policy = default_retry_policy(behaviour, consistent_hash=consistent_hash)
    if retries is None:
        return policy
    if (retries.attempts or 0) <= 0:
        return None
    policy["num_retries"] = retries.attempts
    if retries.retry_on:
        retry_on, codes = _split_retry_on(retries.retry_on)
        # retry.go checks with strings.Contains, so a token merely containing the name also counts.
        if codes and RETRIABLE_STATUS_CODES not in retry_on:
            retry_on = f"{retry_on},{RETRIABLE_STATUS_CODES}"
        policy["retry_on"] = retry_on
        policy.pop("retriable_status_codes", None)
        if codes:
            policy["retriable_status_codes"] = codes
    if retries.per_try_timeout is not None:
        policy["per_try_timeout"] = envoy_duration(retries.per_try_timeout)
    if retries.retry_ignore_previous_hosts is not None:
        policy.pop("retry_host_predicate", None)
        if retries.retry_ignore_previous_hosts:
            policy["retry_host_predicate"] = [_previous_hosts()]
    if retries.retry_remote_localities:
        policy["retry_priority"] = {
            "name": names.RETRY_PREVIOUS_PRIORITIES,
            "typed_config": {
                "@type": names.TYPE_PREVIOUS_PRIORITIES,
                "update_frequency": PREVIOUS_PRIORITIES_UPDATE_FREQUENCY,
            },
        }
    if retries.backoff is not None:
        policy["retry_back_off"] = {"base_interval": envoy_duration(retries.backoff)}
    return policy


def _previous_hosts() -> Resource:
    return {"name": names.RETRY_PREVIOUS_HOSTS, "typed_config": {"@type": names.TYPE_PREVIOUS_HOSTS}}


def _split_retry_on(retry_on: str) -> tuple[str, list[int]]:
    """``parseRetryOn``: registered HTTP status codes apart, the other trimmed non-empty parts joined again."""
    codes: list[int] = []
    tokens: list[str] = []
    for raw in retry_on.split(","):
        part = raw.strip()
        if not part:
            continue
        if is_http_status(part):
            codes.append(int(part))
        else:
            tokens.append(part)
    return ",".join(tokens), codes
