"""The document Structs: schema files generated from them, saved documents read back."""

from __future__ import annotations

import json

import msgspec
import pytest

from elfcost import documents as d
from elfcost.check.run import read_baseline as load_baseline
from elfcost.errors import InputError
from elfcost.report import schemas


def test_committed_schema_files_are_what_the_structs_generate() -> None:
    committed = {p.name: p.read_text() for p in schemas.SCHEMA_DIR.glob("*.json")}
    assert committed == schemas.rendered(), "run `make schemas` and commit the result"


def test_every_document_is_tagged_with_its_name_and_version() -> None:
    for kind, _ in schemas.DOCUMENTS:
        assert schemas.tag(kind).startswith("elfcost.")
        assert schemas.tag(kind).rsplit("/", 1)[1].isdigit()


def _estimate() -> d.EstimateDoc:
    zero = d.Range(at_entry=0, low=0, expected=4096, high=8192)
    return d.EstimateDoc(
        binary="/bin/x",
        page_size=4096,
        machine="x86_64",
        loader=d.Loader(family=d.LoaderFamily.GLIBC, path="/lib64/ld-linux-x86-64.so.2"),
        profile="glibc-dynamic",
        objects=(
            d.ObjectDoc(
                path="/bin/x",
                soname=None,
                role="executable",
                writable_pages=2,
                pages=(
                    d.PageDoc(
                        vaddr=0x4000,
                        cause=d.Cause.RELOCATION,
                        certain=True,
                        phase="entry",
                        detail="3 x R_X86_64_RELATIVE",
                    ),
                ),
                private_dirty=zero,
                shared_clean=0,
                notes=(),
            ),
        ),
        process={},
        total=d.Total(
            private_dirty=zero,
            shared_clean=0,
            fleet=d.Fleet(instances=1, shared_clean=0, private_dirty=zero, total_expected=4096),
        ),
        missing=(),
        warnings=(),
        assumptions=(),
    )


def test_an_estimate_round_trips_with_its_tag_first() -> None:
    doc = _estimate()
    text = d.encode(doc, pretty=False)
    assert text.startswith('{"schema":"elfcost.estimate/3",')
    assert d.decode(text, d.EstimateDoc, source="x.json") == doc


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (lambda j: j.update(schema="elfcost.deps/1"), "Invalid value 'elfcost.deps/1'"),
        (lambda j: j.pop("objects"), "missing required field `objects`"),
        (lambda j: j["objects"][0]["pages"][0].update(cause="sunspots"), "$.objects[0]"),
        (lambda j: j["total"]["private_dirty"].update(low=-1), "$.total.private_dirty.low"),
        (lambda j: j.update(page_size=1000), "$.page_size"),
    ],
)
def test_a_malformed_saved_estimate_is_an_input_error_naming_file_and_field(
    mutate: object, says: str
) -> None:
    j = msgspec.to_builtins(_estimate())
    mutate(j)  # type: ignore[operator]
    with pytest.raises(InputError) as e:
        d.decode(json.dumps(j), d.EstimateDoc, source="saved.json")
    assert str(e.value).startswith("saved.json: not an elfcost.estimate/3 document: ")
    assert says in str(e.value)


def test_not_json_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"^saved.json: not JSON: "):
        d.decode(b"{oops", d.EstimateDoc, source="saved.json")


def test_baseline_reads_back_and_refuses_what_is_not_one(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    good = base / "b.json"
    good.write_text('{"usr/bin/a": 8192}')
    assert load_baseline(str(good)) == {"usr/bin/a": 8192}
    assert load_baseline(str(base / "absent.json")) == {}
    for bad in ('["usr/bin/a"]', '{"usr/bin/a": "big"}', '{"usr/bin/a": -1}', "nope"):
        good.write_text(bad)
        with pytest.raises(InputError, match=r"b.json: "):
            load_baseline(str(good))
