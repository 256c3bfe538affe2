"""The `drift --ack FILE` format: loading, lookup, and every problem reported at file:line:column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rovo_reconcile.ack import Ack, AckInvalid, AckSet, load_acks, load_acks_if_present
from rovo_reconcile.errors import EXIT_ERROR, PolicyInvalid

ORG = "6b1f3a0e-5c2d-4f7a-9e88-2d4c1b0a9f13"

VALID = f"""\
# Drift we know about and accept for now.
acknowledged:
  - org: {ORG}
    key: mcp.domain:https://Pilot.Example.com/**
    reason: pilot approved in SEC-123
    expires: 2027-01-31
  - org: {ORG}
    key: ip_allowlist:Corporate egress
    reason: "network team migrating, CHG-42"
    expires: "2026-12-15"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "acks.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    """The lines of the PolicyInvalid message, with the temporary directory removed."""
    path = write(tmp_path, text)
    with pytest.raises(PolicyInvalid) as caught:
        load_acks(path)
    return str(caught.value).replace(str(path), "acks.yaml").splitlines()


def entry(**fields: str) -> str:
    body = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return "acknowledged:\n  -" + body[3:]


GOOD = {"org": ORG, "key": "ip_allowlist:Office", "reason": "SEC-1", "expires": "2027-01-31"}


def test_loads_entries_with_dates_and_lines(tmp_path: Path) -> None:
    """Each entry becomes an Ack with a real date and the line it starts on."""
    acks = load_acks(write(tmp_path, VALID))
    assert acks.acks == (
        Ack(
            ORG,
            "mcp.domain:https://pilot.example.com/**",
            "pilot approved in SEC-123",
            date(2027, 1, 31),
            3,
        ),
        Ack(
            ORG,
            "ip_allowlist:Corporate egress",
            "network team migrating, CHG-42",
            date(2026, 12, 15),
            7,
        ),
    )
    assert acks.file == str(tmp_path / "acks.yaml")


def test_find_by_org_and_canonical_key(tmp_path: Path) -> None:
    """Lookup is by org and change key; a domain key matches in canonical (lower-case) form."""
    acks = load_acks(write(tmp_path, VALID))
    found = acks.find(ORG, "mcp.domain:https://pilot.example.com/**")
    assert found is not None
    assert found.reason == "pilot approved in SEC-123"
    assert acks.find("another-org", "mcp.domain:https://pilot.example.com/**") is None
    assert AckSet().find(ORG, "ip_allowlist:Office") is None


def test_ack_is_active_through_its_expiry_date() -> None:
    """The expiry date is the last day an ack applies."""
    ack = Ack(ORG, "ip_allowlist:Office", "SEC-1", date(2027, 1, 31), 3)
    assert ack.active(date(2027, 1, 31))
    assert not ack.active(date(2027, 2, 1))


def test_an_empty_list_is_valid(tmp_path: Path) -> None:
    """`acknowledged: []` acknowledges nothing and is not an error."""
    assert len(load_acks(write(tmp_path, "acknowledged: []\n"))) == 0


def test_impossible_date(tmp_path: Path) -> None:
    """A date that does not exist is refused at its position."""
    assert problems(tmp_path, entry(**{**GOOD, "expires": "2027-02-30"})) == [
        "acks.yaml:5:14: '2027-02-30' is not a real date"
    ]


def test_date_in_another_format(tmp_path: Path) -> None:
    """Only YYYY-MM-DD is a date; a number or another spelling is refused."""
    assert problems(tmp_path, entry(**{**GOOD, "expires": "31/01/2027"})) == [
        "acks.yaml:5:14: 'expires' must be a date written YYYY-MM-DD, not '31/01/2027'"
    ]
    assert problems(tmp_path, entry(**{**GOOD, "expires": "20270131"})) == [
        "acks.yaml:5:14: 'expires' must be a date written YYYY-MM-DD, not 20270131"
    ]


def test_missing_reason(tmp_path: Path) -> None:
    """An entry without a reason is refused at the entry's line."""
    fields = {k: v for k, v in GOOD.items() if k != "reason"}
    assert problems(tmp_path, entry(**fields)) == [
        "acks.yaml:2:5: this acknowledgement has no 'reason'"
    ]


def test_empty_reason(tmp_path: Path) -> None:
    """A blank reason is no reason."""
    assert problems(tmp_path, entry(**{**GOOD, "reason": '"  "'})) == [
        "acks.yaml:4:13: 'reason' must be non-empty text"
    ]


def test_missing_expiry(tmp_path: Path) -> None:
    """Acks cannot be forever: `expires` is required, with a hint how to write it."""
    fields = {k: v for k, v in GOOD.items() if k != "expires"}
    assert problems(tmp_path, entry(**fields)) == [
        "acks.yaml:2:5: this acknowledgement has no 'expires': acknowledgements must end "
        "(hint: add `expires: YYYY-MM-DD`, the last day the drift is accepted)"
    ]


def test_unknown_key_in_an_entry(tmp_path: Path) -> None:
    """An unknown key is refused at the key itself, with a did-you-mean hint."""
    assert problems(tmp_path, entry(**GOOD, expiry="2027-01-31")) == [
        "acks.yaml:6:5: unknown key 'expiry'; expected org, key, reason, expires, live "
        "(hint: did you mean 'expires'?)"
    ]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """The file holds `acknowledged` and nothing else."""
    text = entry(**GOOD) + "acknowledge: []\n"
    assert problems(tmp_path, text) == [
        "acks.yaml:6:1: unknown key 'acknowledge'; expected acknowledged "
        "(hint: did you mean 'acknowledged'?)"
    ]


def test_yaml_alias_is_refused(tmp_path: Path) -> None:
    """The same YAML safety as policies: anchors and aliases are refused, at their position."""
    text = f"acknowledged:\n  - org: &o {ORG}\n    key: ip_allowlist:Office\n"
    lines = problems(tmp_path, text)
    assert len(lines) == 1
    assert lines[0].startswith("acks.yaml:2:10: YAML anchors (&o) are not allowed")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several bad entries give one error listing each problem, in file order."""
    text = (
        "acknowledged:\n"
        f"  - org: {ORG}\n    key: dns:example.com\n    reason: x\n    expires: 2027-01-01\n"
        f"  - org: {ORG}\n    key: mcp.settings:apiToken\n    reason: x\n    expires: 2027-13-01\n"
        "  - just a string\n"
    )
    assert problems(tmp_path, text) == [
        "acks.yaml:3:10: 'dns:example.com' is not a change key: it must start with "
        "mcp.settings:, mcp.domain:, ip_allowlist: "
        "(hint: copy the key from the drift report, such as mcp.domain:https://pilot.example.com/**)",
        "acks.yaml:7:10: 'mcp.settings:apiToken' is not a setting "
        "(hint: use mcp.settings:allowAtlassianSupportedDomains or "
        "mcp.settings:authentication.apiToken)",
        "acks.yaml:9:14: '2027-13-01' is not a real date",
        "acks.yaml:10:5: an acknowledgement is a mapping of org, key, reason and expires",
    ]


def test_duplicate_acknowledgement(tmp_path: Path) -> None:
    """Acknowledging the same key twice is refused, naming the first line."""
    first = entry(**GOOD)
    second = "".join(f"    {k}: {v}\n" for k, v in GOOD.items()).replace("    org", "  - org", 1)
    assert problems(tmp_path, first + second) == [
        f"acks.yaml:6:5: ip_allowlist:Office in org {ORG} is already acknowledged at line 2 "
        "(hint: keep one of the two)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n", "acks.yaml:1:1: an ack file is a mapping with one key, 'acknowledged'"),
        ("acknowledged: yes\n", "acks.yaml:1:15: 'acknowledged' must be a list of entries"),
        ("other: 1\n", "acks.yaml:1:1: missing 'acknowledged', the list of acknowledged drift"),
    ],
)
def test_wrong_shape(tmp_path: Path, text: str, expected: str) -> None:
    """A file that is not `acknowledged: [...]` says what it should be."""
    assert problems(tmp_path, text)[0].startswith(expected)


@pytest.mark.parametrize(
    "text",
    ["", "# no drift is acknowledged yet\n", "acknowledged: []\n", "acknowledged:\n#  - org: x\n"],
)
def test_a_file_without_entries_acknowledges_nothing(tmp_path: Path, text: str) -> None:
    """0 bytes, only comments, an empty list, or every entry commented out: no acks, no error."""
    assert load_acks(write(tmp_path, text)).acks == ()


def test_a_missing_file_is_none_only_when_asked(tmp_path: Path) -> None:
    """`load_acks_if_present` gives None for a missing file, and still checks one that exists."""
    assert load_acks_if_present(tmp_path / "missing.yaml") is None
    with pytest.raises(AckInvalid):
        load_acks_if_present(write(tmp_path, "acknowledged: 3\n"))


def test_invalid_ack_file_exits_1(tmp_path: Path) -> None:
    """The error is a PolicyInvalid (exit 1) that keeps the located problems."""
    path = write(tmp_path, "acknowledged: 3\n")
    with pytest.raises(AckInvalid) as caught:
        load_acks(path)
    assert caught.value.exit_code == EXIT_ERROR
    assert [(p.line, p.column, p.code) for p in caught.value.problems] == [(1, 15, "ack.shape")]


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file is a located PolicyInvalid, not a traceback."""
    with pytest.raises(PolicyInvalid, match="cannot read the file"):
        load_acks(tmp_path / "missing.yaml")


def test_live_pin_is_loaded(tmp_path: Path) -> None:
    """`live` pins an acknowledgement to the live value the drift report showed."""
    (ack,) = load_acks(write(tmp_path, entry(**GOOD, live="v0123456789a"))).acks
    assert ack.live == "v0123456789a"
    (plain,) = load_acks(write(tmp_path, entry(**GOOD))).acks
    assert plain.live is None


def test_live_pin_must_be_a_live_id(tmp_path: Path) -> None:
    """Anything but the 12-character id is refused at its position, with a hint."""
    assert problems(tmp_path, entry(**GOOD, live="latest")) == [
        "acks.yaml:6:11: 'live' must be the live id the drift report shows (v and 11 hex "
        "digits), not 'latest' (hint: copy it from the drift report, or leave 'live' out to "
        "cover any drift on the key)"
    ]
