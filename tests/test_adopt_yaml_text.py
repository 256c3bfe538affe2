"""adopt's span edits of YAML text: the data changes as asked, every other line stays as it was."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rovo_reconcile.adopt.yaml_text import Flow, YamlText, render_scalar
from rovo_reconcile.policy.yaml_source import parse_text


def _data(text: str) -> object:
    doc, problems = parse_text(text, "t.yaml")
    assert not problems
    return doc.data


def _list(doc: YamlText, *keys: str) -> tuple[object, object]:
    found = doc.at(*keys)
    assert found is not None
    return found


def test_deleting_an_entry_takes_its_comment_lines_and_keeps_its_neighbours() -> None:
    text = (
        "a:\n"
        "  # first\n"
        "  - one   # eol one\n"
        "  # second, about two\n"
        "  - two\n"
        "  # third\n"
        "  - three\n"
        "b: 1  # after\n"
    )
    doc = YamlText(text)
    key, seq = _list(doc, "a")
    doc.edit_list(key, seq, {1}, {})  # type: ignore[arg-type]
    assert doc.result() == (
        "a:\n  # first\n  - one   # eol one\n  # third\n  - three\nb: 1  # after\n"
    )


def test_entries_separated_by_blank_lines_keep_one_blank_line_where_one_was_deleted() -> None:
    text = "a:\n  - x: 1\n    y: 2\n\n  - x: 3\n\n  - x: 5\n\nb: 1\n"
    for index, expected in [
        (0, "a:\n  - x: 3\n\n  - x: 5\n\nb: 1\n"),
        (1, "a:\n  - x: 1\n    y: 2\n\n  - x: 5\n\nb: 1\n"),
        (2, "a:\n  - x: 1\n    y: 2\n\n  - x: 3\n\nb: 1\n"),
    ]:
        doc = YamlText(text)
        key, seq = _list(doc, "a")
        doc.edit_list(key, seq, {index}, {})  # type: ignore[arg-type]
        assert doc.result() == expected, index


def test_new_entries_copy_indentation_shape_quoting_and_blank_lines_of_their_neighbours() -> None:
    text = "a:\n    - name: 'one'\n      n: 1\n\n    - name: 'two'\n      n: 2\nb: [x]\n"
    doc = YamlText(text)
    key, seq = _list(doc, "a")
    doc.edit_list(key, seq, set(), {0: [{"name": "new", "n": 3, "l": Flow(["p", "q"])}]})  # type: ignore[arg-type]
    assert doc.result() == (
        "a:\n    - name: 'one'\n      n: 1\n\n    - name: 'new'\n      n: 3\n      l: [p, q]\n\n"
        "    - name: 'two'\n      n: 2\nb: [x]\n"
    )


def test_a_block_list_emptied_becomes_an_empty_flow_list_and_keeps_its_comment() -> None:
    doc = YamlText("a:   # the list\n  - 1\n  - 2\nb: 1\n")
    key, seq = _list(doc, "a")
    doc.edit_list(key, seq, {0, 1}, {})  # type: ignore[arg-type]
    assert doc.result() == "a: []   # the list\nb: 1\n"


def test_flow_lists_keep_their_separators_and_quote_what_flow_context_needs() -> None:
    doc = YamlText('a: [one,  "two", three]  # c\n')
    key, seq = _list(doc, "a")
    doc.edit_list(key, seq, {1}, {2: ["https://x.example/{a,b}"]})  # type: ignore[arg-type]
    assert doc.result() == 'a: [one,  three,  "https://x.example/{a,b}"]  # c\n'
    assert _data(doc.result()) == {"a": ["one", "three", "https://x.example/{a,b}"]}


def test_an_empty_flow_list_receiving_mappings_becomes_a_block_list() -> None:
    doc = YamlText("top:\n  - k: v\nlists: []  # none yet\nz: 1\n")
    key, seq = _list(doc, "lists")
    doc.edit_list(key, seq, set(), {-1: [{"name": "n", "apps": Flow(["jira"])}]})  # type: ignore[arg-type]
    assert doc.result() == (
        "top:\n  - k: v\nlists:  # none yet\n  - name: n\n    apps: [jira]\nz: 1\n"
    )


def test_crlf_text_gets_crlf_lines() -> None:
    doc = YamlText("a:\r\n  - 1\r\n  - 2\r\nb: true\r\n")
    key, seq = _list(doc, "a")
    doc.edit_list(key, seq, {0}, {1: ["3"]})  # type: ignore[arg-type]
    b = _list(doc, "b")[1]
    doc.set_scalar(b, False)  # type: ignore[arg-type]
    assert doc.result() == "a:\r\n  - 2\r\n  - '3'\r\nb: false\r\n".replace("'3'", '"3"')


def test_booleans_keep_their_capitals_and_strings_their_quotes() -> None:
    doc = YamlText("a: True\nb: FALSE\nc: 'x'\n")
    doc.set_scalar(_list(doc, "a")[1], False)  # type: ignore[arg-type]
    doc.set_scalar(_list(doc, "b")[1], True)  # type: ignore[arg-type]
    doc.set_scalar(_list(doc, "c")[1], "it's")  # type: ignore[arg-type]
    assert doc.result() == "a: False\nb: TRUE\nc: 'it''s'\n"


def test_deleting_and_inserting_keys_of_entries() -> None:
    text = "l:\n  - expires: 2020-01-01\n    address: 1.2.3.4\n  - address: 5.6.7.8\n    expires: 2020-01-01\n  - {address: 9.9.9.9, expires: 2020-01-01}\n"
    doc = YamlText(text)
    seq = _list(doc, "l")[1]
    for item in seq.value:  # type: ignore[attr-defined]
        doc.delete_key(item, "expires")
    assert (
        doc.result() == "l:\n  - address: 1.2.3.4\n  - address: 5.6.7.8\n  - {address: 9.9.9.9}\n"
    )
    doc = YamlText("m:\n  apps: [jira]\n  addresses: []\n")
    doc.insert_key(_list(doc, "m")[1], "apps", "allowMobileBypass", True)
    assert doc.result() == "m:\n  apps: [jira]\n  allowMobileBypass: true\n  addresses: []\n"


def test_render_scalar_reads_back_through_the_policy_loader() -> None:
    for value in ["plain", "yes", "on", "null", "1.5", "a: b", "#x", "x #y", "", " lead", "it's"]:
        for flow in (False, True):
            text = render_scalar(value, flow=flow)
            source = f"k: [{text}]\n" if flow else f"k: {text}\n"
            assert _data(source) == {"k": [value] if flow else value}, (value, text)


_entry = st.sampled_from(["1.2.3.4", "10.0.0.0/8", "https://a.example/**", "x y", "yes", "'q'"])


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(_entry, min_size=1, max_size=6),
    comments=st.lists(st.booleans(), min_size=6, max_size=6),
    gap=st.booleans(),
    flow=st.booleans(),
    delete=st.sets(st.integers(0, 5)),
    insert=st.dictionaries(st.integers(-1, 5), st.lists(_entry, min_size=1, max_size=2)),
)
def test_list_edits_change_the_data_as_asked_and_no_other_line(
    entries: list[str],
    comments: list[bool],
    gap: bool,
    flow: bool,
    delete: set[int],
    insert: dict[int, list[str]],
) -> None:
    """Property: the list reads back as asked, and every line the edit does not concern is kept."""
    n = len(entries)
    delete = {i for i in delete if i < n}
    insert = {i: v for i, v in insert.items() if i < n}
    quoted = [render_scalar(e) for e in entries]
    owners: list[object] = []  # per line: the entry it belongs to, "head", or None
    if flow:
        text = "# head\nlist: [" + ", ".join(render_scalar(e, flow=True) for e in entries) + "]\n"
    else:
        lines = ["# head", "list:  # the list"]
        owners += [None, "head"]
        for index, shown in enumerate(quoted):
            if comments[index]:
                lines.append(f"  # about entry {index}")
                owners.append(index)
            lines.append(f"  - {shown}")
            owners.append(index)
            if gap and index < n - 1:
                lines.append("")
                owners.append(None)
        text = "\n".join(lines) + "\n"
    text += "tail: 1  # kept\n"
    owners.append(None)
    doc = YamlText(text)
    key, seq = _list(doc, "list")
    doc.edit_list(key, seq, delete, insert)  # type: ignore[arg-type]
    result = doc.result()
    expected = list(insert.get(-1, []))
    for index, entry in enumerate(entries):
        if index not in delete:
            expected.append(entry)
        expected.extend(insert.get(index, []))
    assert _data(result) == {"list": expected, "tail": 1}
    if flow:
        return
    # every line of a kept entry, and every other line but blank ones, is still there, in order
    emptied = not expected
    kept = [
        line
        for line, owner in zip(text.splitlines(), owners, strict=True)
        if line and owner not in delete and not (owner == "head" and emptied)
    ]
    remaining = iter(result.splitlines())
    assert all(line in remaining for line in kept), (text, result)
