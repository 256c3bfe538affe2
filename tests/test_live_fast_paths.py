"""The fast path for live addresses (`ranges.canonical_span`) agrees with `normalize_address`:
it accepts exactly the values that are their own normal form, with the same span."""

from __future__ import annotations

import ipaddress
import random

from rovo_reconcile.errors import NormalizeError
from rovo_reconcile.policy.normalize import normalize_address
from rovo_reconcile.policy.ranges import canonical_span


def _cases() -> list[str]:
    rng = random.Random(9)
    cases = ["1.2.3.4/32", "1.2.3.0/24", "1.2.3.1/24", "0.0.0.0/1", "128.0.0.0/1", "1.2.3.4/0"]
    cases += ["1.2.3.4", "01.2.3.4/32", "1.2.3.4/08", "1.2.3.4/33", "1.2.3.4/32\n", "1.2.3.4 /32"]
    cases += ["\uff11.2.3.4/32", "1.2.3.4/\u0663\u0662", "256.1.1.1/32", "1.2.3/24", ""]
    for _ in range(20_000):
        octets = [str(rng.choice([0, 1, 9, 10, 99, 100, 200, 255, 256, rng.randrange(300)]))]
        octets += [str(rng.randrange(0, 260)) for _ in range(3)]
        if rng.random() < 0.05:
            octets[rng.randrange(4)] = "0" + octets[0]
        tail = rng.choice(["", "/", "/0", f"/{rng.randrange(0, 34)}", f"/0{rng.randrange(10)}"])
        cases.append(".".join(octets) + tail)
    return cases


def test_canonical_span_is_exactly_the_normal_forms() -> None:
    for text in _cases():
        try:
            normal: str | None = normalize_address(text)
        except NormalizeError:
            normal = None
        fast = canonical_span(text)
        assert (fast is not None) == (normal == text), text
        if fast is not None:
            net = ipaddress.IPv4Network(text)
            assert fast == (int(net.network_address), int(net.broadcast_address))


def test_domain_normal_forms_are_their_own_normal_form() -> None:
    """`read_org` takes a live pattern equal to one of the policy's (normalised) patterns as
    it is: that relies on normalisation being idempotent."""
    from pathlib import Path

    from rovo_reconcile.policy.normalize import normalize_domain

    patterns = {
        "HTTPS://Bücher.Example.COM:443/**",
        "https://{b,a}.x.com/**",
        "https://xn--bcher-kva.example.com/**",
        "https://*.EXAMPLE.com",
        "https://mcp.example.com:8443/mcp/v1/**",
    }
    for path in Path("examples").rglob("*.yaml"):
        patterns.update(w for w in path.read_text("utf-8").split() if w.startswith("https://"))
    checked = 0
    for pattern in patterns:
        try:
            normal = normalize_domain(pattern)
        except NormalizeError:
            continue
        assert normalize_domain(normal) == normal, pattern
        checked += 1
    assert checked >= 5
